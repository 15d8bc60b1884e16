"""The application: responses, errors, lifespan hooks, the per-request task protocol."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from qakeapi import HTTPException, QakeAPI
from qakeapi.core._request_tasks import current_request_tasks
from qakeapi.requests import Request
from qakeapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from qakeapi.testing import AsyncTestClient, TestClient

from ._server import serve


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


def make_app(log: list[str], *, fail_flush: bool = False,
             middleware: str | bool = False) -> QakeAPI:
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

    async def tag(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        log.append("middleware")
        return response

    if middleware is True:
        app.add_middleware(BaseHTTPMiddleware, dispatch=tag)
    elif middleware == "function":
        app.middleware("http")(tag)
    elif middleware == "gzip":
        app.add_middleware(GZipMiddleware, minimum_size=1)
    elif middleware == "stack":
        app.middleware("http")(tag)
        app.add_middleware(GZipMiddleware, minimum_size=1)
        app.add_middleware(CORSMiddleware, allow_origins=["*"])
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
@pytest.mark.parametrize("middleware", [False, True, "function", "gzip", "stack"])
async def test_flush_before_start_release_after_body(middleware: str | bool) -> None:
    log: list[str] = []
    await drive(make_app(log, middleware=middleware), "/ok", log)
    assert log.index("flush") < log.index("http.response.start")
    assert log.index("http.response.body") < log.index("release")
    assert not any(entry.startswith("drop") for entry in log)


@pytest.mark.anyio
@pytest.mark.parametrize("middleware", [False, "function", "gzip", "stack"])
@pytest.mark.parametrize("path", ["/boom", "/teapot"])
async def test_handler_raising_drops_tasks(path: str, middleware: str | bool) -> None:
    log: list[str] = []
    await drive(make_app(log, middleware=middleware), path, log)
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
    with caplog.at_level(logging.ERROR, logger="qakeapi.app"), TestClient(
            app, raise_server_exceptions=False) as client:
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

    with TestClient(app, raise_server_exceptions=False) as client:
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


def test_the_test_client_raises_server_errors_after_the_500_was_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    with caplog.at_level(logging.ERROR), TestClient(make_app(log)) as client, \
            pytest.raises(RuntimeError, match="secret detail"):
        client.get("/boom")
    assert [r.getMessage() for r in caplog.records] == ["GET /boom failed"]
    assert [e for e in log if e.startswith("drop")] == [
        "drop: the handler raised RuntimeError: secret detail"]


@pytest.mark.anyio
async def test_the_async_test_client_raises_server_errors_too() -> None:
    app = make_app([])
    async with AsyncTestClient(app) as client:
        with pytest.raises(RuntimeError, match="secret detail"):
            await client.get("/boom")
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/boom")).status_code == 500


def test_under_uvicorn_a_server_error_is_logged_once_and_answered(
        caplog: pytest.LogCaptureFixture) -> None:
    # uvicorn's loggers don't propagate, and starting uvicorn configures them afresh.
    uvicorn_log = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.ERROR), serve(make_app([])) as url:
        uvicorn_log.addHandler(caplog.handler)
        try:
            response = httpx.get(f"{url}/boom", timeout=10)
        finally:
            uvicorn_log.removeHandler(caplog.handler)
    assert response.status_code == 500
    assert [r.getMessage() for r in caplog.records] == ["GET /boom failed"]


class OutOfStock(Exception):
    pass


def handlers_app() -> tuple[QakeAPI, list[str]]:
    app = QakeAPI()
    seen: list[str] = []

    @app.exception_handler(OutOfStock)
    async def out_of_stock(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"out of stock: {exc}"}, status_code=409)

    @app.exception_handler(404)
    def not_found(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse(f"nothing at {request.url.path}", status_code=404)

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        seen.append(type(exc).__name__)
        return JSONResponse({"detail": "sorry", "kind": type(exc).__name__}, status_code=500)

    app.add_exception_handler(Exception, server_error)

    @app.get("/buy")
    async def buy() -> None:
        raise OutOfStock("pens")

    @app.get("/crash")
    async def crash() -> None:
        raise KeyError("bug")

    return app, seen


def test_exception_handlers_by_class_and_by_status(caplog: pytest.LogCaptureFixture) -> None:
    app, seen = handlers_app()
    with caplog.at_level(logging.ERROR, "qakeapi.app"), TestClient(
            app, raise_server_exceptions=False) as client:
        bought = client.get("/buy")
        missing = client.get("/nowhere")
        crashed = client.get("/crash")
    assert (bought.status_code, bought.json()) == (409, {"detail": "out of stock: pens"})
    assert (missing.status_code, missing.text) == (404, "nothing at /nowhere")
    assert (crashed.status_code, crashed.json()) == (500, {"detail": "sorry",
                                                           "kind": "KeyError"})
    assert seen == ["KeyError"]
    assert [r.getMessage() for r in caplog.records] == ["GET /crash failed"]


def test_bad_exception_handlers_and_middleware_are_refused() -> None:
    app, _ = handlers_app()
    with pytest.raises(TypeError, match="exception class or an HTTP status"):
        app.add_exception_handler("ValueError", lambda r, e: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exception class or an HTTP status"):
        app.add_exception_handler(True, lambda r, e: None)
    with pytest.raises(TypeError, match="must be callable"):
        app.add_exception_handler(ValueError, "handler")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r'only @app.middleware\("http"\)'):
        app.middleware("websocket")
    with pytest.raises(TypeError, match="must be an async function"):
        app.middleware("http")(lambda request, call_next: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/buy")
        with pytest.raises(RuntimeError, match="before the app starts"):
            app.add_exception_handler(ValueError, lambda r, e: None)


def test_http_middleware_functions_wrap_every_request_last_added_outermost() -> None:
    app = QakeAPI()
    order: list[str] = []

    @app.middleware("http")
    async def timing(request: Request, call_next: Any) -> Any:
        order.append("timing")
        response = await call_next(request)
        response.headers["x-timing"] = "yes"
        return response

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Any:
        order.append("gate")
        if request.headers.get("x-key") != "open":
            return JSONResponse({"detail": "no key"}, status_code=403)
        return await call_next(request)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield b"%d" % i

        return StreamingResponse(chunks())

    with TestClient(app) as client:
        refused = client.get("/stream")
        served = client.get("/stream", headers={"x-key": "open"})
    assert (refused.status_code, refused.json()) == (403, {"detail": "no key"})
    assert "x-timing" not in refused.headers
    assert (served.text, served.headers["x-timing"]) == ("012", "yes")
    assert order == ["gate", "gate", "timing"]
