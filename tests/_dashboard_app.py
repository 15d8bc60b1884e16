"""A Starlette app with a SQLite queue, its embedded worker and dashboards mounted, for the
dashboard tests (HTTP and browser). Tasks wait for files the test creates in its tmp dir."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from qakeapi import add_background_task
from qakeapi.dashboard import dashboard
from qakeapi.queued_tasks import QueuedTasks, getLogger, set_context
from qakeapi.tasks_asgi import tasks_lifespan
from qakeapi.types import TaskRecord

TOKEN = "test-dashboard-token"
SECRET = "hunter2-secret"
PLACE: dict[str, Path] = {}


async def stepper(steps: int, password: str = "") -> str:
    log = getLogger("stepper")
    for step in range(1, steps + 1):
        while not (PLACE["dir"] / f"step-{step}").exists():
            await anyio.sleep(0.05)
        set_context("progress", step * 100 / steps)
        set_context("stage.current", step)
        log.info("finished step %d", step)
    return "done"


async def sleeper(seconds: float) -> None:
    await anyio.sleep(seconds)


async def flaky() -> str:
    if not (PLACE["dir"] / "gate").exists():
        raise RuntimeError("the gate is closed")
    return "opened"


FUNCTIONS = {"stepper": stepper, "sleeper": sleeper, "flaky": flaky}


def mask(record: TaskRecord) -> TaskRecord:
    if isinstance(record.kwargs, dict) and "password" in record.kwargs:
        return dataclasses.replace(record, kwargs={**record.kwargs, "password": "***"})
    return record


def build(directory: Path, **options: Any) -> tuple[Starlette, QueuedTasks]:
    PLACE["dir"] = directory
    tasks = QueuedTasks(f"sqlite:///{directory / 'queue.db'}")
    for name, fn in FUNCTIONS.items():
        tasks.register(fn, name=name, max_retries=0)

    async def add(request: Request) -> JSONResponse:
        body = await request.json()
        ref = await tasks.enqueue(FUNCTIONS[body["name"]], *body.get("args", ()),
                                  **body.get("kwargs", {}))
        return JSONResponse({"id": ref.id})

    async def background(request: Request) -> JSONResponse:
        body = await request.json()
        ref = await add_background_task(sleeper, body["seconds"])
        return JSONResponse({"id": ref.id})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with tasks_lifespan(tasks):
            yield

    app = Starlette(lifespan=lifespan, routes=[
        Route("/add", add, methods=["POST"]),
        Route("/background", background, methods=["POST"]),
        Mount("/dash", dashboard(tasks, auth=TOKEN, mask=mask, poll_interval=0.2, **options)),
        Mount("/ro", dashboard(tasks, auth=TOKEN, read_only=True, poll_interval=0.2)),
    ])
    return app, tasks
