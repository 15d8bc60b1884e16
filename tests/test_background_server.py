"""Background tasks under a real uvicorn: the response goes first, always."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from starlette.middleware.base import BaseHTTPMiddleware

from qakeapi import BackgroundTaskManager, QakeAPI, TaskStatus
from qakeapi.core.background import add_background_task

from ._server import send_and_hang_up, serve


def ordering_app(with_middleware: bool) -> tuple[QakeAPI, threading.Event, dict[str, Any]]:
    app = QakeAPI()
    client_has_response = threading.Event()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    async def blocks_the_loop() -> None:
        # Blocks the event loop on purpose: had the task started before the response was
        # written, the client could not receive it and this wait would time out.
        outcome["client_had_response"] = client_has_response.wait(10)
        done.set()

    @app.post("/order")
    async def order() -> dict[str, bool]:
        await add_background_task(blocks_the_loop)
        return {"queued": True}

    if with_middleware:
        async def passthrough(request: Any, call_next: Any) -> Any:
            return await call_next(request)

        app.add_middleware(BaseHTTPMiddleware, dispatch=passthrough)
    outcome["done"] = done
    return app, client_has_response, outcome


@pytest.mark.parametrize("with_middleware", [False, True])
def test_client_has_full_response_before_task_starts(with_middleware: bool) -> None:
    app, client_has_response, outcome = ordering_app(with_middleware)
    with serve(app) as url:
        response = httpx.post(f"{url}/order", timeout=20)
        assert response.json() == {"queued": True}
        client_has_response.set()
        assert outcome["done"].wait(15)
    assert outcome["client_had_response"] is True


def test_client_disconnect_does_not_cancel_task() -> None:
    app = QakeAPI()
    finished = threading.Event()
    handler_done = threading.Event()

    async def survivor() -> None:
        await anyio.sleep(0.1)
        finished.set()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await add_background_task(survivor)
        await anyio.sleep(0.3)
        handler_done.set()
        return {"ok": True}

    with serve(app) as url:
        send_and_hang_up(url, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert handler_done.wait(10)
        assert finished.wait(10)


def test_sync_task_does_not_block_other_requests() -> None:
    app = QakeAPI()
    other_request_served = threading.Event()
    result: dict[str, bool] = {}
    task_done = threading.Event()

    def sync_job() -> None:
        result["released_by_other_request"] = other_request_served.wait(10)
        task_done.set()

    @app.post("/job")
    async def job() -> dict[str, bool]:
        await add_background_task(sync_job)
        return {"ok": True}

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    with serve(app) as url:
        httpx.post(f"{url}/job", timeout=10)
        assert httpx.get(f"{url}/ping", timeout=5).json() == "pong"
        other_request_served.set()
        assert task_done.wait(15)
    assert result["released_by_other_request"] is True


def test_failing_task_does_not_affect_response_or_others() -> None:
    app = QakeAPI()
    ran: list[str] = []
    ids: dict[str, str] = {}

    async def bad() -> None:
        raise RuntimeError("task bug")

    async def good() -> None:
        ran.append("good")

    @app.post("/both")
    async def both() -> dict[str, bool]:
        ids["bad"] = await add_background_task(bad)
        ids["good"] = await add_background_task(good)
        return {"ok": True}

    with serve(app) as url:
        response = httpx.post(f"{url}/both", timeout=10)
        assert (response.status_code, response.json()) == (200, {"ok": True})
        manager = BackgroundTaskManager()
        for _ in range(500):
            if ran and manager.tasks[ids["bad"]].status is TaskStatus.FAILED:
                break
            threading.Event().wait(0.01)
        assert ran == ["good"]
        assert manager.tasks[ids["bad"]].status is TaskStatus.FAILED
