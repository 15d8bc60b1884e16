"""The application: responses, errors, lifespan hooks, the per-request task protocol."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.middleware.base import BaseHTTPMiddleware

from qakeapi import HTTPException, QakeAPI
from qakeapi.core._request_tasks import current_request_tasks
from qakeapi.testing import TestClient


class Recorder:
    """A request participant recording what the app does with it, and when."""

    def __init__(self, log: list[str], fail_flush: bool = False) -> None:
        self.log = log
        self.fail_flush = fail_flush

    async def flush(self) -> None:
        self.log.append("flush")
        if self.fail_flush:
            raise ConnectionError("backend down")

    def release(self) -> None:
        self.log.append("release")

    def drop(self, reason: str) -> None:
        self.log.append(f"drop: {reason}")


def make_app(log: list[str], *, fail_flush: bool = False, middleware: bool = False) -> QakeAPI:
    app = QakeAPI()

    def join() -> None:
        holder = current_request_tasks.get()
        assert holder is not None
        holder.participant("rec", lambda: Recorder(log, fail_flush))

    @app.get("/ok")
    async def ok() -> dict[str, Any]:
        join()
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> None:
        join()
        raise RuntimeError("secret detail")

    @app.get("/teapot")
    async def teapot() -> None:
        join()
        raise HTTPException(418, "short and stout")

    if middleware:
        async def tag(request: Any, call_next: Any) -> Any:
            response = await call_next(request)
            log.append("middleware")
            return response

        app.add_middleware(BaseHTTPMiddleware, dispatch=tag)
    return app


class SendSpy:
    """A raw ASGI driver, to see the order of flush/release against sent messages."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __call__(self, message: dict[str, Any]) -> None:
        self.log.append(message["type"])


async def drive(app: QakeAPI, path: str, log: list[str]) -> None:
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [], "http_version": "1.1", "scheme": "http",
             "server": ("test", 80), "client": ("c", 1), "root_path": ""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await app(scope, receive, SendSpy(log))


@pytest.mark.anyio
@pytest.mark.parametrize("middleware", [False, True])
async def test_flush_before_start_release_after_body(middleware: bool) -> None:
    log: list[str] = []
    await drive(make_app(log, middleware=middleware), "/ok", log)
    assert log.index("flush") < log.index("http.response.start")
    assert log.index("http.response.body") < log.index("release")
    assert not any(entry.startswith("drop") for entry in log)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/boom", "/teapot"])
async def test_handler_raising_drops_tasks(path: str) -> None:
    log: list[str] = []
    await drive(make_app(log), path, log)
    drops = [entry for entry in log if entry.startswith("drop")]
    assert len(drops) == 1 and "the handler raised" in drops[0]
    assert "release" not in log and "flush" not in log


@pytest.mark.anyio
async def test_flush_failure_answers_503_and_drops() -> None:
    log: list[str] = []
    app = make_app(log, fail_flush=True)
    with TestClient(app) as client:
        response = client.get("/ok")
    assert response.status_code == 503
    assert "could not queue tasks" in response.json()["detail"]
    assert any(entry.startswith("drop: storing queued tasks failed") for entry in log)


def test_500_hides_internals_and_logs_traceback(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app([])
    with caplog.at_level(logging.ERROR, logger="qakeapi.app"), TestClient(app) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert "secret detail" not in response.text
    assert any("secret detail" in (r.exc_text or "") for r in caplog.records)


def test_debug_shows_error_details() -> None:
    app = QakeAPI(debug=True)

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("visible in debug")

    with TestClient(app) as client:
        body = client.get("/boom").json()
    assert body["error"]["type"] == "ValueError"
    assert "visible in debug" in body["error"]["traceback"]


def test_http_exception_and_not_found_are_json() -> None:
    app = make_app([])
    with TestClient(app) as client:
        teapot = client.get("/teapot")
        missing = client.get("/missing")
    assert (teapot.status_code, teapot.json()) == (418, {"detail": "short and stout"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})


def test_lifespan_hooks_run_in_order() -> None:
    app = QakeAPI()
    calls: list[str] = []

    @app.on_startup
    def sync_start() -> None:
        calls.append("sync start")

    @app.on_startup
    async def async_start() -> None:
        calls.append("async start")

    @app.on_shutdown
    async def stop() -> None:
        calls.append("stop")

    with TestClient(app):
        assert calls == ["sync start", "async start"]
    assert calls == ["sync start", "async start", "stop"]


def test_failing_startup_hook_fails_startup(caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()

    @app.on_startup
    async def broken() -> None:
        raise RuntimeError("database unreachable")

    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="database"), \
            TestClient(app):
        pass
    assert any("startup hook" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_handled_error_is_not_raised_to_the_server_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler error is answered 500 and logged once; the ASGI call then returns normally
    (the server would log it a second time)."""
    log: list[str] = []
    with caplog.at_level(logging.ERROR, logger="qakeapi.app"):
        await drive(make_app(log), "/boom", log)
    assert log.count("http.response.start") == 1
    assert len([r for r in caplog.records if "secret detail" in (r.exc_text or "")]) == 1


@pytest.mark.anyio
async def test_an_error_without_a_response_reaches_the_server() -> None:
    app = QakeAPI()

    async def broken_handler(request: Any, exc: Exception) -> None:
        raise LookupError("the error handler itself failed")

    app._starlette.exception_handlers[Exception] = broken_handler
    app._starlette.middleware_stack = None

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("first")

    with pytest.raises(LookupError):
        await drive(app, "/boom", [])


@pytest.mark.anyio
async def test_tasks_queued_by_a_middleware_are_stored_before_the_response_starts() -> None:
    """A middleware may queue tasks after the handler returned: they are stored before its
    response reaches the server."""
    log: list[str] = []
    app = QakeAPI()

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    async def queue_after(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        holder = current_request_tasks.get()
        assert holder is not None
        holder.participant("rec", lambda: Recorder(log))
        return response

    app.add_middleware(BaseHTTPMiddleware, dispatch=queue_after)
    await drive(app, "/plain", log)
    assert log.index("flush") < log.index("http.response.start") < log.index("release")
