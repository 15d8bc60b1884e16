"""What one request may do: tasks of a failed request, mounted endpoints, held-task limits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.routing import Router as StarletteRouter

from qakeapi import (
    BackgroundTaskManager,
    Inject,
    QakeAPI,
    QueuedTasks,
    TaskStatus,
    TooManyPendingTasks,
    add_background_task,
)
from qakeapi.constants import BACKGROUND_YIELD_EVERY
from qakeapi.requests import Request
from qakeapi.routing import build_route
from qakeapi.testing import TestClient

from . import _queue_tasks


@pytest.fixture(autouse=True)
def fresh_manager() -> Iterator[BackgroundTaskManager]:
    BackgroundTaskManager.reset()
    yield BackgroundTaskManager()
    BackgroundTaskManager.reset()


def test_tasks_added_by_a_dependency_are_dropped_when_a_later_parameter_fails(
        tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    app = QakeAPI(queue_url=f"sqlite:///{db}")
    ran: list[str] = []
    added: list[str] = []

    def note(what: str) -> None:
        ran.append(what)

    async def audit(request: Request, tasks: QueuedTasks = Inject(QueuedTasks)) -> str:
        added.append(await add_background_task(note, request.url.path))
        tasks.add_task(_queue_tasks.echo, request.url.path)
        return "audited"

    @app.post("/items/{item_id}")
    async def create(audit: str = Inject(audit), item_id: int = 0) -> dict[str, Any]:
        return {"id": item_id, "audit": audit}

    with TestClient(app) as client:
        bad = client.post("/items/abc")
        good = client.post("/items/7")
        manager = BackgroundTaskManager()
        for task_id in added:
            manager_wait(client, manager, task_id)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "item_id"]
    assert good.json() == {"id": 7, "audit": "audited"}
    assert [manager.tasks[task_id].status for task_id in added] == [
        TaskStatus.CANCELLED, TaskStatus.SUCCEEDED]
    assert ran == ["/items/7"]
    with sqlite3.connect(db) as conn:
        stored = [row[0] for row in conn.execute("SELECT args FROM tasks")]
    assert len(stored) == 1 and "/items/7" in stored[0]


def manager_wait(client: TestClient, manager: BackgroundTaskManager, task_id: str) -> None:
    async def wait() -> None:
        await manager.wait(task_id, timeout=30)

    assert client.portal is not None
    client.portal.call(wait)


class Greeting:
    def __init__(self, text: str) -> None:
        self.text = text


async def hello(greeting: Greeting = Inject(Greeting)) -> dict[str, str]:
    return {"greeting": greeting.text}


@pytest.mark.parametrize("prefix", ["/starlette", "/router"])
def test_endpoints_in_mounted_apps_use_the_enclosing_app(prefix: str) -> None:
    app = QakeAPI()
    app.container.register(Greeting, Greeting("from the app"))
    app.mount("/starlette", Starlette(routes=[build_route("/hello", hello, ["GET"], "h")]))
    app.mount("/router", StarletteRouter(routes=[build_route("/hello", hello, ["GET"], "h")]))
    with TestClient(app, raise_server_exceptions=True) as client:
        assert client.get(f"{prefix}/hello").json() == {"greeting": "from the app"}


def test_endpoint_outside_any_qakeapi_app_names_the_problem() -> None:
    plain = Starlette(routes=[build_route("/hello", hello, ["GET"], "h")])
    with TestClient(plain, raise_server_exceptions=True) as client, pytest.raises(
            LookupError, match="not served by a QakeAPI app"):
        client.get("/hello")


def limited_app(max_pending: int) -> tuple[QakeAPI, dict[str, Any]]:
    BackgroundTaskManager().configure(max_pending=max_pending)
    app = QakeAPI()
    seen: dict[str, Any] = {"peak": 0, "accepted": 0, "ids": []}

    async def job(i: int) -> None:
        return None

    async def add_many(count: int) -> None:
        manager = BackgroundTaskManager()
        for i in range(count):
            seen["ids"].append(await add_background_task(job, i))
            seen["accepted"] += 1
            seen["peak"] = max(seen["peak"], manager.counts()[TaskStatus.PENDING])

    @app.post("/many/{count}")
    async def many(count: int) -> dict[str, int]:
        await add_many(count)
        return {"added": count}

    @app.post("/some/{count}")
    async def some(count: int) -> tuple[dict[str, Any], int]:
        try:
            await add_many(count)
        except TooManyPendingTasks as exc:
            return {"added": seen["accepted"], "refused": str(exc)}, 202
        return {"added": count}, 200

    return app, seen


def test_one_request_cannot_hold_more_than_max_pending() -> None:
    app, seen = limited_app(50)
    with TestClient(app) as client:
        response = client.post("/many/1000")
        manager = BackgroundTaskManager()
        statuses = {manager.tasks[i].status for i in seen["ids"]}
    assert response.status_code == 503
    assert "max_pending=50" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
    assert seen["accepted"] == 50 and seen["peak"] == 50
    assert statuses == {TaskStatus.CANCELLED}  # the handler failed: its held tasks dropped


def test_a_handler_may_catch_the_refusal_and_keep_what_it_holds() -> None:
    app, seen = limited_app(50)
    with TestClient(app) as client:
        response = client.post("/some/1000")
        manager = BackgroundTaskManager()
        for task_id in seen["ids"]:
            manager_wait(client, manager, task_id)
        statuses = {manager.tasks[i].status for i in seen["ids"]}
        after = client.post("/some/40")
    assert response.status_code == 202 and response.json()["added"] == 50
    assert seen["peak"] == 50
    assert statuses == {TaskStatus.SUCCEEDED}
    assert after.json() == {"added": 40}  # held tasks released: room again


def test_a_handler_may_await_the_refs_it_added(tmp_path: Path) -> None:
    """status / wait / cancel inside the handler store the request's batch on demand (they
    used to wait for the end of the handler: a deadlock); later tasks form a new batch,
    stored before the response starts, or dropped if the handler then raises."""
    db = tmp_path / "queue.db"
    app = QakeAPI(queue_url=f"sqlite:///{db}")

    @app.post("/now")
    async def now(fail: bool = False, tasks: QueuedTasks = Inject(QueuedTasks)) -> Any:
        with anyio.fail_after(30):
            first = tasks.add_task(_queue_tasks.echo, "first")
            seen = [(await first.status()).value]
            seen.append((await first.wait(timeout=30)).status.value)
            later = tasks.add_task(_queue_tasks.echo, "later", delay=600)
            seen.append((await later.cancel("changed my mind")).status.value)
            tasks.add_task(_queue_tasks.echo, "last", delay=600)
        if fail:
            raise RuntimeError("after storing")
        return seen

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/now")
        assert response.status_code == 200
        first_status, *rest = response.json()
        assert first_status in ("pending", "running", "succeeded")
        assert rest == ["succeeded", "cancelled"]
        assert client.post("/now?fail=true").status_code == 500
    with sqlite3.connect(db) as conn:
        rows = [(args, status) for args, status in
                conn.execute("SELECT args, status FROM tasks ORDER BY created_at")]
    assert [(a.split('"')[1], s) for a, s in rows] == [
        ("first", "succeeded"), ("later", "cancelled"), ("last", "pending"),
        ("first", "succeeded"), ("later", "cancelled")]


@pytest.mark.anyio
async def test_requests_whose_handlers_never_wait_let_the_runners_in() -> None:
    """A client calling the app back to back, with handlers that never wait, gives the event
    loop no turn: the tasks the requests release must still start long before the pending
    queue fills (BACKGROUND_YIELD_EVERY queued tasks let the runners in once)."""
    app = QakeAPI()
    requests_done = 0
    seen_at: list[int] = []

    async def job() -> None:
        seen_at.append(requests_done)

    @app.post("/add")
    async def add() -> dict[str, bool]:
        await add_background_task(job)
        return {"ok": True}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/add", "raw_path": b"/add",
             "query_string": b"", "root_path": "", "headers": [(b"host", b"t")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    total = 3 * BACKGROUND_YIELD_EVERY
    async with app.lifespan():
        for _ in range(total):
            await app(dict(scope), receive, send)
            requests_done += 1
        first_batch = list(seen_at)
        while len(seen_at) < total:
            await anyio.sleep(0.01)
    assert first_batch and max(first_batch) < total  # started while requests were coming
    assert seen_at == sorted(seen_at) and len(seen_at) == total
