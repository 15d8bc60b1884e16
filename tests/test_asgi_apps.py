"""The request protocol in a bare Starlette app and a FastAPI app, under a real uvicorn:
the same guarantees as a QakeAPI app (see test_background_server.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qakeapi import BackgroundTaskManager, QueuedTasks, TaskStatus, add_background_task
from qakeapi.tasks_asgi import TaskMiddleware, queued_tasks_dependency, tasks_lifespan

from . import _queue_tasks
from ._server import send_and_hang_up, serve

KINDS = ["starlette", "fastapi"]
Endpoint = Callable[[Request], Any]


@pytest.fixture(autouse=True)
def fresh_manager() -> Iterator[None]:
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def build(kind: str, queue: QueuedTasks, endpoints: dict[str, Endpoint]) -> Any:
    """An app of ``kind`` serving ``endpoints`` (POST), with the task middleware and
    lifespan, as docs/fastapi.md shows."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with tasks_lifespan(queue):
            yield

    app: Any
    if kind == "starlette":
        routes = [Route(path, fn, methods=["POST"]) for path, fn in endpoints.items()]
        app = Starlette(routes=routes, lifespan=lifespan)
    else:
        app = FastAPI(lifespan=lifespan)
        for path, fn in endpoints.items():
            app.add_api_route(path, fn, methods=["POST"])
    app.add_middleware(TaskMiddleware)
    return app


def stored_rows(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT args FROM tasks")]


@pytest.mark.parametrize("kind", KINDS)
def test_client_has_full_response_before_task_starts(kind: str, tmp_path: Path) -> None:
    client_has_response = threading.Event()
    done = threading.Event()
    outcome: dict[str, bool] = {}

    async def blocks_the_loop() -> None:
        # Blocks the event loop: had the task started before the response was written,
        # the client could not receive it and this wait would time out.
        outcome["client_had_response"] = client_has_response.wait(10)
        done.set()

    async def order(request: Request) -> JSONResponse:
        await add_background_task(blocks_the_loop)
        await anyio.sleep(0.05)  # the handler goes on awaiting, as a database call would
        return JSONResponse({"queued": True})

    app = build(kind, QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}"), {"/order": order})
    with serve(app) as url:
        assert httpx.post(f"{url}/order", timeout=20).json() == {"queued": True}
        client_has_response.set()
        assert done.wait(15)
    assert outcome["client_had_response"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_client_disconnect_does_not_cancel_task(kind: str, tmp_path: Path) -> None:
    finished = threading.Event()
    handler_done = threading.Event()
    seen: dict[str, bool] = {}

    async def survivor() -> None:
        seen["started_after_handler"] = handler_done.is_set()
        await anyio.sleep(0.1)
        finished.set()

    async def slow(request: Request) -> JSONResponse:
        await add_background_task(survivor)
        await anyio.sleep(0.3)
        handler_done.set()
        return JSONResponse({"ok": True})

    app = build(kind, QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}"), {"/slow": slow})
    with serve(app) as url:
        send_and_hang_up(url, b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert handler_done.wait(10)
        assert finished.wait(10)
    assert seen["started_after_handler"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_failing_handler_drops_its_tasks(kind: str, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    queue = QueuedTasks(f"sqlite:///{db}")
    ran: list[str] = []
    ids: dict[str, str] = {}

    def note(what: str) -> None:
        ran.append(what)

    async def boom(request: Request) -> JSONResponse:
        ids["bg"] = await add_background_task(note, "boom")
        queue.add_task(_queue_tasks.echo, "boom")
        raise RuntimeError("handler bug")

    async def fine(request: Request) -> JSONResponse:
        ids["ok"] = await add_background_task(note, "fine")
        queue.add_task(_queue_tasks.echo, "fine")
        return JSONResponse({"ok": True})

    app = build(kind, queue, {"/boom": boom, "/fine": fine})
    with serve(app) as url:
        assert httpx.post(f"{url}/boom", timeout=10).status_code == 500
        assert httpx.post(f"{url}/fine", timeout=10).status_code == 200
        manager = BackgroundTaskManager()
        for _ in range(1000):
            if manager.tasks[ids["ok"]].status is TaskStatus.SUCCEEDED:
                break
            threading.Event().wait(0.01)
        assert manager.tasks[ids["bg"]].status is TaskStatus.CANCELLED
        assert manager.tasks[ids["ok"]].status is TaskStatus.SUCCEEDED
    assert ran == ["fine"]
    rows = stored_rows(db)
    assert len(rows) == 1 and "fine" in rows[0]


@pytest.mark.parametrize("kind", KINDS)
def test_queued_tasks_are_stored_before_the_response_starts(kind: str, tmp_path: Path) -> None:
    """Storing fails (a real SQLite trigger refuses the insert): the client gets a 503, not
    a response that claims the task was queued, and the background task is dropped."""
    db = tmp_path / "q.db"
    queue = QueuedTasks(f"sqlite:///{db}")
    ids: list[str] = []

    async def enqueue(request: Request) -> JSONResponse:
        ids.append(await add_background_task(print, "never"))
        ref = queue.add_task(_queue_tasks.echo, "payload")
        return JSONResponse({"queued": ref.id})

    app = build(kind, queue, {"/enqueue": enqueue})
    with serve(app) as url:
        assert httpx.post(f"{url}/enqueue", timeout=10).status_code == 200
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON tasks "
                         "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        refused = httpx.post(f"{url}/enqueue", timeout=10)
        assert refused.status_code == 503
        assert "disk says no" in refused.json()["detail"]
        assert BackgroundTaskManager().tasks[ids[1]].status is TaskStatus.CANCELLED
    assert len(stored_rows(db)) == 1


def test_fastapi_dependency_drops_tasks_of_an_http_exception(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    queue = QueuedTasks(f"sqlite:///{db}")
    app = build("fastapi", queue, {})
    tasks_dep = Depends(queued_tasks_dependency(queue))

    @app.post("/conflict")
    async def conflict(tasks: QueuedTasks = tasks_dep) -> dict[str, str]:
        tasks.add_task(_queue_tasks.echo, "conflict")
        raise HTTPException(409, "already there")

    @app.post("/created")
    async def created(tasks: QueuedTasks = tasks_dep) -> dict[str, str]:
        return {"id": tasks.add_task(_queue_tasks.echo, "created").id}

    with serve(app) as url:
        assert httpx.post(f"{url}/conflict", timeout=10).status_code == 409
        assert httpx.post(f"{url}/created", timeout=10).status_code == 200
    rows = stored_rows(db)
    assert len(rows) == 1 and "created" in rows[0]


@pytest.mark.parametrize("kind", KINDS)
def test_handler_may_await_the_ref_it_added(kind: str, tmp_path: Path) -> None:
    queue = QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}")

    async def now(request: Request) -> JSONResponse:
        with anyio.fail_after(30):
            ref = queue.add_task(_queue_tasks.echo, "now", delay=600)
            status = await ref.status()
        return JSONResponse({"status": status.value})

    with serve(build(kind, queue, {"/now": now})) as url:
        assert httpx.post(f"{url}/now", timeout=40).json() == {"status": "pending"}
