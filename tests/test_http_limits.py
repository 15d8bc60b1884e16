"""Request body limits (413, 408) under a real uvicorn, and malformed bodies and values."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.routing import Route

from qakeapi import QakeAPI
from qakeapi.http_limits import RequestLimits, resolve_limits
from qakeapi.requests import Request
from qakeapi.testing import TestClient

from ._server import serve

MIB = 1024 * 1024
BIG = 200 * MIB


def upload_app(**limits: Any) -> tuple[QakeAPI, list[int]]:
    app = QakeAPI(**limits)
    sizes: list[int] = []

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        body = await request.body()
        sizes.append(len(body))
        return {"size": len(body)}

    return app, sizes


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def read_response(sock: socket.socket, timeout: float = 30) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def push_body(sock: socket.socket, head: bytes, total: int, chunked: bool) -> int:
    """Send ``head`` then up to ``total`` body bytes, stopping as soon as the server answers;
    returns the bytes sent."""
    sock.sendall(head)
    piece = b"x" * 65536
    sent = 0
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


@pytest.fixture
def limited() -> Iterator[tuple[str, list[int]]]:
    app, sizes = upload_app(max_body_size=MIB)
    with serve(app) as url:
        yield url, sizes


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_413_and_never_read_whole(
        limited: tuple[str, list[int]], chunked: bool) -> None:
    url, sizes = limited
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % BIG
    with socket.create_connection(address(url)) as sock:
        sent = push_body(sock, b"POST /upload HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % framing,
                         BIG, chunked)
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    assert b"connection: close" in response.lower()
    assert b'{"detail":"request body too large' in response
    assert sent < BIG // 4
    assert sizes == []
    exact = httpx.post(f"{url}/upload", content=iter([b"x" * (MIB - 10), b"x" * 10]))
    assert exact.json() == {"size": MIB}


def test_half_a_body_is_408_after_the_body_timeout() -> None:
    app, sizes = upload_app(body_timeout=0.5)
    with serve(app) as url, socket.create_connection(address(url)) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                     + b"x" * 50)
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 408 "), response[:200]
    assert b"request body not received within 0.5 s" in response
    assert sizes == []


def test_limits_from_arguments_environment_and_defaults(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    assert resolve_limits(None, None, {}) == (MIB, 30.0)
    assert resolve_limits(None, None, {"QAKEAPI_MAX_BODY_SIZE": "10",
                                       "QAKEAPI_BODY_TIMEOUT": "2.5"}) == (10, 2.5)
    assert resolve_limits(0, 0, {"QAKEAPI_MAX_BODY_SIZE": "10"}) == (0, 0.0)
    monkeypatch.setenv("QAKEAPI_MAX_BODY_SIZE", "2048")
    assert QakeAPI().max_body_size == 2048
    assert QakeAPI(max_body_size=5).max_body_size == 5


@pytest.mark.parametrize(("kwargs", "env", "error", "message"), [
    ({"max_body_size": -1}, {}, ValueError, "max_body_size must not be negative"),
    ({"max_body_size": "1MB"}, {}, TypeError, "max_body_size must be an int"),
    ({"max_body_size": True}, {}, TypeError, "max_body_size must be an int"),
    ({"body_timeout": float("nan")}, {}, ValueError, "body_timeout must be a finite"),
    ({"body_timeout": "slow"}, {}, TypeError, "body_timeout must be a number"),
    ({}, {"QAKEAPI_MAX_BODY_SIZE": "1MB"}, ValueError, "QAKEAPI_MAX_BODY_SIZE='1MB' is not"),
    ({}, {"QAKEAPI_BODY_TIMEOUT": "-1"}, ValueError, "QAKEAPI_BODY_TIMEOUT must be a finite"),
])
def test_bad_limits_are_refused_naming_them(kwargs: dict[str, Any], env: dict[str, str],
                                            error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_limits(kwargs.get("max_body_size"), kwargs.get("body_timeout"), env)


def test_limits_as_starlette_middleware() -> None:
    async def echo(request: StarletteRequest) -> StarletteJSONResponse:
        return StarletteJSONResponse({"size": len(await request.body())})

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])],
                    middleware=[Middleware(RequestLimits, max_body_size=10)])
    with TestClient(app) as client:
        assert client.post("/echo", content=b"x" * 10).json() == {"size": 10}
        declared = client.post("/echo", content=b"x" * 11)
        streamed = client.post("/echo", content=iter([b"x" * 6, b"x" * 6]))
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert declared.json()["detail"].startswith("request body too large: 11 bytes declared")
    # Starlette's own handler answers an error raised while the app reads (plain text).
    assert streamed.text == "request body too large: the limit is 10 bytes"


def test_limits_answer_for_an_app_without_exception_handling() -> None:
    async def raw_app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    client = TestClient(RequestLimits(raw_app, max_body_size=4))  # no lifespan: raw_app has none
    assert client.post("/", content=b"abcd").text == "ok"
    response = client.post("/", content=iter([b"abc", b"de"]))
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def make_app() -> QakeAPI:
    app = QakeAPI()

    @app.post("/orders")
    async def orders(order: dict[str, Any]) -> dict[str, Any]:
        return {"got": order}

    @app.post("/raw")
    async def raw(request: Request) -> Any:
        return await request.json()

    @app.get("/scale/{factor}")
    async def scale(factor: float, offset: float = 0.0) -> dict[str, float]:
        return {"value": factor * 2 + offset}

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


def test_json_nested_too_deep_is_400_or_422_json_invalid(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {"content-type": "application/json"}
    response = client.post("/raw", content=body, headers=headers)
    assert (response.status_code, response.json()) == (
        400, {"detail": "malformed JSON body: nested too deeply"})
    # A body parameter answers as FastAPI does: 422 json_invalid.
    response = client.post("/orders", content=body, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"][0]) == ("json_invalid", "body")
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("body", [b'{"x": NaN}', b'{"x": Infinity}', b'[-Infinity]'])
def test_json_without_standard_numbers_is_400_or_422_json_invalid(
        client: TestClient, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    response = client.post("/raw", content=body, headers=headers)
    assert response.status_code == 400, (body, response.text)
    assert response.json()["detail"].startswith("malformed JSON body: ")
    response = client.post("/orders", content=body, headers=headers)
    assert response.status_code == 422, (body, response.text)
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("json_invalid", ["body"])
    assert "is not a JSON number" in error["ctx"]["error"]
    fine = client.post("/orders", json={"x": "NaN", "y": "Infinity"})
    assert fine.json() == {"got": {"x": "NaN", "y": "Infinity"}}


def test_body_that_is_not_json_is_422(client: TestClient) -> None:
    response = client.post("/orders", content=b"a=1", headers={
        "content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert "application/x-www-form-urlencoded" in response.json()["detail"][0]["msg"]
    for content_type in (None, "application/json; charset=utf-8", "application/vnd.x+json"):
        headers = {"content-type": content_type} if content_type else {}
        ok = client.post("/orders", content=b'{"a": 1}', headers=headers)
        assert ok.json() == {"got": {"a": 1}}, content_type


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity"])
def test_non_finite_floats_are_422_naming_the_parameter(client: TestClient, value: str) -> None:
    in_path = client.get(f"/scale/{value}")
    in_query = client.get(f"/scale/1.5?offset={value}")
    assert in_path.status_code == in_query.status_code == 422
    assert in_path.json()["detail"][0]["loc"] == ["path", "factor"]
    assert in_query.json()["detail"][0]["loc"] == ["query", "offset"]
    assert in_path.json()["detail"][0]["type"] == "finite_number"
    assert in_path.json()["detail"][0]["msg"] == "Input should be a finite number"
    assert client.get("/scale/1.5?offset=1e3").json() == {"value": 1003.0}
