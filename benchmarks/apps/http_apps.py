"""The two apps benchmarks/http_requests.py compares: each schedules one background task per
request."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qakeapi import QakeAPI
from qakeapi.core.background import add_background_task

done = {"count": 0}


async def job(n: int) -> None:
    done["count"] += 1


qakeapi_app = QakeAPI()


@qakeapi_app.post("/order")
async def order(request: Request) -> dict[str, bool]:
    await add_background_task(job, 1)
    return {"queued": True}


async def starlette_order(request: Request) -> JSONResponse:
    tasks = BackgroundTasks()
    tasks.add_task(job, 1)
    return JSONResponse({"queued": True}, background=tasks)


starlette_app = Starlette(routes=[Route("/order", starlette_order, methods=["POST"])])
