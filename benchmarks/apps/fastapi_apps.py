"""The two FastAPI apps benchmarks/fastapi_tasks.py compares: the same endpoint scheduling one
background task per request, with qakeapi's task system (``TaskMiddleware``,
``tasks_lifespan``, ``add_background_task``) or with FastAPI's own ``BackgroundTasks``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI

from qakeapi import add_background_task
from qakeapi.tasks_asgi import TaskMiddleware, tasks_lifespan

done = {"count": 0}


async def job(n: int) -> None:
    done["count"] += 1


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with tasks_lifespan():
        yield


qakeapi_tasks_app = FastAPI(lifespan=lifespan)
qakeapi_tasks_app.add_middleware(TaskMiddleware)


@qakeapi_tasks_app.post("/order")
async def order(n: int = 1) -> dict[str, bool]:
    await add_background_task(job, n)
    return {"queued": True}


fastapi_tasks_app = FastAPI()


@fastapi_tasks_app.post("/order")
async def fastapi_order(background_tasks: BackgroundTasks, n: int = 1) -> dict[str, bool]:
    background_tasks.add_task(job, n)
    return {"queued": True}
