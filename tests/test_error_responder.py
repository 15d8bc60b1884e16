"""A QakeAPI app without middleware answers route errors in its outer layer
(qakeapi/_error_responder.py); with middleware, Starlette's error layers answer them. Every
case here runs on both and must give the same answer."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from qakeapi import QakeAPI
from qakeapi.exceptions import HTTPException, TooManyPendingTasks
from qakeapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from qakeapi.testing import TestClient


class PassThrough:
    """A middleware that changes nothing (it makes the app keep Starlette's stack)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class OutOfStock(Exception):
    pass


class OutOfPens(OutOfStock):
    pass


class HandlerBroke(Exception):
    pass


def build(with_middleware: bool) -> QakeAPI:
    app = QakeAPI()
    if with_middleware:
        app.add_middleware(PassThrough)

    @app.exception_handler(OutOfStock)
    async def out_of_stock(request: Any, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"out of stock: {exc}"}, status_code=409)

    @app.exception_handler(418)
    def teapot(request: Any, exc: Exception) -> PlainTextResponse:  # sync: on a thread
        return PlainTextResponse(f"teapot at {request.url.path}", status_code=418)

    @app.exception_handler(HandlerBroke)
    async def broken(request: Any, exc: Exception) -> None:
        raise LookupError("the handler itself failed")

    @app.get("/pens")
    async def pens() -> None:
        raise OutOfPens("blue")

    @app.get("/teapot")
    async def brew() -> None:
        raise HTTPException(418, "short and stout")

    @app.get("/gone")
    async def gone() -> None:
        raise HTTPException(410, "gone", headers={"x-why": "sold"})

    @app.get("/empty")
    async def empty() -> None:
        raise HTTPException(204)

    @app.get("/crash")
    async def crash() -> None:
        raise KeyError("bug")

    @app.get("/broken")
    async def broken_route() -> None:
        raise HandlerBroke()

    @app.get("/busy")
    async def busy() -> None:
        raise TooManyPendingTasks("full")

    @app.get("/late")
    async def late() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part"
            raise HTTPException(409, "too late to answer")

        return StreamingResponse(body())

    return app


@pytest.fixture(params=[False, True], ids=["outer-layer", "starlette-stack"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    with TestClient(build(request.param), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/pens", 409, '{"detail":"out of stock: blue"}'),  # by the nearest class in the MRO
    ("/teapot", 418, "teapot at /teapot"),  # by status, a sync handler
    ("/gone", 410, '{"detail":"gone"}'),
    ("/empty", 204, ""),
    ("/nowhere", 404, '{"detail":"Not Found"}'),
    ("/crash", 500, '{"detail":"Internal Server Error"}'),
    ("/broken", 500, '{"detail":"Internal Server Error"}'),
    ("/busy", 503, '{"detail":"full"}'),
])
def test_both_stacks_answer_alike(client: TestClient, path: str, status: int,
                                  body: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.text) == (status, body)


def test_http_exception_headers_and_405(client: TestClient) -> None:
    gone = client.get("/gone")
    assert gone.headers["x-why"] == "sold"
    not_allowed = client.post("/gone")
    assert (not_allowed.status_code, not_allowed.json()) == (405,
                                                             {"detail": "Method Not Allowed"})
    assert "GET" in not_allowed.headers["allow"]


def test_a_failing_handler_is_logged_as_the_server_error(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "qakeapi.app"):
        client.get("/broken")
    [record] = [r for r in caplog.records if r.name == "qakeapi.app"]
    assert record.getMessage() == "GET /broken failed"
    assert record.exc_info is not None and record.exc_info[0] is LookupError


@pytest.mark.parametrize("with_middleware", [False, True])
def test_an_error_after_the_response_started_reaches_the_server(with_middleware: bool) -> None:
    with TestClient(build(with_middleware)) as client, pytest.raises(
            RuntimeError, match="response already started") as raised:
        client.get("/late")
    assert isinstance(raised.value.__cause__, HTTPException)


@pytest.mark.parametrize("with_middleware", [False, True])
def test_the_test_client_raises_the_server_error(with_middleware: bool) -> None:
    with TestClient(build(with_middleware)) as client, pytest.raises(KeyError) as raised:
        client.get("/crash")
    frames = [frame.filename for frame in traceback.extract_tb(raised.value.__traceback__)]
    layer = any(name.endswith("starlette/middleware/errors.py") for name in frames)
    # Without middleware a request passes none of Starlette's error layers.
    assert layer is with_middleware


def test_handlers_added_after_the_first_request_are_refused() -> None:
    app = build(False)
    with TestClient(app) as client:
        client.get("/pens")
        with pytest.raises(RuntimeError, match="before the app starts"):
            app.add_exception_handler(ValueError, lambda request, exc: None)


def test_without_a_lifespan_the_first_request_chooses_the_stack() -> None:
    client = TestClient(build(False), raise_server_exceptions=False)  # no `with`
    assert client.get("/pens").status_code == 409
    assert client.get("/crash").status_code == 500
