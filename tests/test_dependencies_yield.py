"""Dependencies that ``yield``: teardown after the response is sent and before the request's
background tasks start; a handler's exception is thrown into them; sync and async."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from qakeapi import Depends, HTTPException, QakeAPI
from qakeapi.core.background import add_background_task
from qakeapi.testing import AsyncTestClient, TestClient

from ._server import serve

EVENTS: list[str] = []


async def async_resource() -> AsyncIterator[str]:
    EVENTS.append("async open")
    try:
        yield "async-res"
    except Exception as exc:
        EVENTS.append(f"async saw {type(exc).__name__}")
        raise
    finally:
        EVENTS.append("async close")


def sync_resource(name: str = "sync") -> Iterator[str]:
    EVENTS.append(f"{name} open")
    try:
        yield f"{name}-res"
    finally:
        EVENTS.append(f"{name} close")


def uses_both(a: str = Depends(async_resource), s: str = Depends(sync_resource)) -> str:
    return f"{a}+{s}"


async def note_background() -> None:
    EVENTS.append("background task")


def make_app() -> QakeAPI:
    app = QakeAPI()

    class Recorder:
        """ASGI middleware: records when the response's last byte is handed on."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def recording_send(message: Any) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    EVENTS.append("response sent")

            await self.inner(scope, receive, recording_send)

    app.add_middleware(Recorder)

    @app.get("/ok")
    async def ok(both: str = Depends(uses_both), a: str = Depends(async_resource)
                 ) -> dict[str, Any]:
        EVENTS.append("handler")
        await add_background_task(note_background)
        return {"both": both, "a": a}

    @app.get("/fails")
    async def fails(a: str = Depends(async_resource)) -> None:
        EVENTS.append("handler")
        raise HTTPException(409, "conflict")

    @app.get("/sync")
    def sync_handler(s: str = Depends(sync_resource)) -> dict[str, str]:
        return {"s": s}

    return app


@pytest.fixture(autouse=True)
def _clear() -> None:
    EVENTS.clear()


async def _until(predicate: Any) -> None:
    with anyio.fail_after(10):
        while not predicate():
            await anyio.sleep(0.01)


def test_teardown_runs_after_the_response_and_before_background_tasks() -> None:
    app = make_app()
    assert app.routes[0].endpoint.plan.has_teardown
    with TestClient(app) as client:
        assert client.get("/ok").json() == {"both": "async-res+sync-res", "a": "async-res"}
    # async_resource is used twice in the tree and opened once; closed in reverse order.
    assert EVENTS == ["async open", "sync open", "handler", "response sent", "sync close",
                      "async close", "background task"]


def test_a_handler_error_is_thrown_into_the_generator() -> None:
    with TestClient(make_app()) as client:
        response = client.get("/fails")
    assert response.status_code == 409
    # As in FastAPI, the error reaches the generator first; its response is sent after.
    assert EVENTS == ["async open", "handler", "async saw HTTPException", "async close",
                      "response sent"]


def test_a_failed_parameter_opens_no_resource() -> None:
    app = QakeAPI()

    @app.get("/")
    async def index(n: int, a: str = Depends(async_resource)) -> None:
        return None

    with TestClient(app) as client:
        response = client.get("/?n=x")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "n"]
    assert EVENTS == []


@pytest.mark.anyio
async def test_sync_generators_through_the_async_client() -> None:
    async with AsyncTestClient(make_app()) as client:
        response = await client.get("/sync")
    assert response.json() == {"s": "sync-res"}
    assert EVENTS == ["sync open", "response sent", "sync close"]


@pytest.mark.anyio
async def test_order_under_uvicorn() -> None:
    with serve(make_app()) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.get("/ok")
            assert response.status_code == 200
            await _until(lambda: "background task" in EVENTS)
    assert EVENTS.index("response sent") < EVENTS.index("sync close") \
        < EVENTS.index("async close") < EVENTS.index("background task")


def test_yield_dependency_without_exit_stack_is_a_clear_error() -> None:
    from qakeapi._params import plan_callable
    from qakeapi.dependencies import Container, DependencyError
    from qakeapi.requests import Request

    async def handler(a: str = Depends(async_resource)) -> None:
        return None

    plan = plan_callable(handler, path_params=())
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}

    async def run() -> None:
        await plan.resolve(Request(scope), Container())

    with pytest.raises(DependencyError, match="yields, and the caller gave no exit stack"):
        anyio.run(run)


THREADS: dict[str, int] = {}


def sync_blocking() -> Iterator[str]:
    THREADS["sync setup"] = threading.get_ident()
    yield "x"
    THREADS["sync teardown"] = threading.get_ident()


def sync_plain() -> str:
    THREADS["sync plain"] = threading.get_ident()
    return "y"


async def on_loop() -> str:
    THREADS["loop"] = threading.get_ident()
    return "z"


def test_sync_dependencies_run_off_the_event_loop() -> None:
    app = QakeAPI()

    @app.get("/")
    async def index(a: str = Depends(sync_blocking), b: str = Depends(sync_plain),
                    c: str = Depends(on_loop)) -> str:
        return a + b + c

    THREADS.clear()
    with TestClient(app) as client:
        assert client.get("/").json() == "xyz"
    assert set(THREADS) == {"sync setup", "sync teardown", "sync plain", "loop"}
    for name in ("sync setup", "sync teardown", "sync plain"):
        assert THREADS[name] != THREADS["loop"], name
