"""qakeapi.ratelimit: rates, the route decorator and the middleware, through the test client
and a real uvicorn, in QakeAPI, Starlette and FastAPI apps."""

from __future__ import annotations

import logging
import math
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from qakeapi import QakeAPI, Request
from qakeapi.exceptions import ConfigurationError
from qakeapi.ratelimit import (
    Rate,
    RateLimit,
    RateLimitMiddleware,
    client_ip,
    parse_rate,
    rate_limit,
)
from qakeapi.testing import TestClient

from ._redis import REDIS_URL, delete_prefix, private_redis, require_redis
from ._server import free_port, serve


@pytest.fixture(params=["memory", "sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tasks.db"
    else:
        require_redis()
        prefix = f"rltest-{uuid.uuid4().hex[:12]}"
        try:
            yield f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}"
        finally:
            delete_prefix(REDIS_URL, prefix)


def by_header(connection: HTTPConnection) -> str | None:
    return connection.headers.get("x-client")


# -- rates ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "amount", "period"), [
    ("10/minute", 10, 60.0), ("10 per minute", 10, 60.0), ("1/second", 1, 1.0),
    ("100/5 minutes", 100, 300.0), (" 3 / HOUR ", 3, 3600.0), ("2/days", 2, 86400.0),
    ("2/2 days", 2, 172800.0),
])
def test_rates_parse(text: str, amount: int, period: float) -> None:
    assert parse_rate(text) == Rate(amount, period)


@pytest.mark.parametrize("text", [
    "0/minute", "nan/second", "-1/second", "10/fortnight", "", "10", "1e3/second",
    "10/0 minutes", "1.5/second", "10/-1 second", "99999999999/second", "10/1000 days",
    "10/minute; drop table",
])
def test_bad_rates_are_clear_errors(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize(("amount", "period", "error"), [
    (True, 1.0, TypeError), (1.5, 1.0, TypeError), (0, 1.0, ValueError),
    (1, math.nan, ValueError), (1, math.inf, ValueError), (1, -1.0, ValueError),
    (1, 0, ValueError), (1, "60", TypeError),
])
def test_bad_rate_objects_are_clear_errors(amount: Any, period: Any,
                                           error: type[Exception]) -> None:
    with pytest.raises(error, match="rate's"):
        Rate(amount, period)


@pytest.mark.parametrize("rate", [10, None, b"10/minute", 10.0])
def test_a_rate_of_the_wrong_type_is_a_type_error(rate: Any) -> None:
    with pytest.raises(TypeError, match="a rate must be"):
        parse_rate(rate)


def test_bad_limits_fail_when_made() -> None:
    with pytest.raises(ConfigurationError, match="scheme"):
        RateLimit("1/second", url="postgres://db")
    with pytest.raises(ValueError, match="path"):
        RateLimit("1/second", path="login")
    with pytest.raises(TypeError, match="key"):
        RateLimit("1/second", key="x-client")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="scheme"):
        RateLimitMiddleware(Starlette(), limits=["1/second"], url="nope://")


def test_a_decorator_above_the_route_decorator_is_an_error_not_a_silent_no_op() -> None:
    app = QakeAPI()
    with pytest.raises(TypeError, match=r"@rate_limit is above the route decorator of .*open"):
        @rate_limit("1/minute")  # wrong order: the route would serve the unlimited handler
        @app.get("/open")
        async def open_door() -> dict[str, bool]:
            return {"open": True}


# -- the decorator on QakeAPI routes --------------------------------------------------------
def limited_app(url: str) -> QakeAPI:
    app = QakeAPI(queue_url=url)

    @app.get("/items/{item_id}")
    @rate_limit("2/minute")
    async def item(item_id: int, q: str = "") -> dict[str, Any]:
        return {"item": item_id, "q": q}

    @app.post("/echo")
    @rate_limit("2/minute", key=by_header)
    def echo(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"body": body, "path": request.url.path}

    @app.get("/free")
    async def free() -> dict[str, bool]:
        return {"free": True}

    return app


def test_decorator_limits_a_qakeapi_route_in_its_queue_storage(url: str) -> None:
    with TestClient(limited_app(url)) as client:
        first = client.get("/items/1?q=a")
        assert first.json() == {"item": 1, "q": "a"}
        assert client.get("/items/2").status_code == 200
        refused = client.get("/items/3")
        for _ in range(5):
            assert client.get("/free").status_code == 200
    assert refused.status_code == 429
    assert refused.json() == {"detail": "rate limit exceeded: 2 per 60 s"}
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "2"
    assert refused.headers["ratelimit-remaining"] == "0"


def test_decorator_counts_per_client_and_keeps_the_handlers_parameters() -> None:
    with TestClient(limited_app("memory://")) as client:
        for _ in range(2):
            ok = client.post("/echo", json={"a": 1}, headers={"x-client": "alice"})
            assert ok.json() == {"body": {"a": 1}, "path": "/echo"}
        assert client.post("/echo", json={}, headers={"x-client": "alice"}).status_code == 429
        assert client.post("/echo", json={}, headers={"x-client": "bob"}).status_code == 200
        for _ in range(4):  # no x-client header: the key function exempts the request
            assert client.post("/echo", json={}).status_code == 200


def test_decorators_stack_and_each_limit_counts() -> None:
    app = QakeAPI()

    @app.get("/x")
    @rate_limit("3/minute")
    @rate_limit("2/minute", key=by_header)
    def x() -> str:
        return "ok"

    with TestClient(app) as client:
        codes = [client.get("/x", headers={"x-client": f"c{i % 2}"}).status_code
                 for i in range(4)]
        assert codes == [200, 200, 200, 429]  # the outer 3/minute limit, all clients
    app2 = QakeAPI()

    @app2.get("/y")
    @rate_limit("3/minute")
    @rate_limit("1/minute", key=by_header)
    def y() -> str:
        return "ok"

    with TestClient(app2) as client:
        codes = [client.get("/y", headers={"x-client": "same"}).status_code for _ in range(2)]
    assert codes == [200, 429]  # the inner, per-header limit


def test_a_key_function_returning_a_non_str_is_a_clear_error(
        caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()

    @app.get("/x")
    @rate_limit("3/minute", key=lambda connection: 42)  # type: ignore[arg-type,return-value]
    def x() -> str:
        return "ok"

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/x").status_code == 500
    assert "returned 42; it must return a str" in caplog.text


def test_an_unreachable_storage_is_a_503_or_lets_requests_through_when_fail_open(
        caplog: pytest.LogCaptureFixture) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    app = QakeAPI()

    @app.get("/closed")
    @rate_limit("1/minute", url=down)
    def closed() -> str:
        return "ok"

    @app.get("/open")
    @rate_limit("1/minute", url=down, fail_open=True)
    def opened() -> str:
        return "ok"

    with TestClient(app) as client:
        refused = client.get("/closed")
        assert [client.get("/open").status_code for _ in range(3)] == [200] * 3
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    errors = [r for r in caplog.records if r.name == "qakeapi.ratelimit"]
    assert {r.levelno for r in errors} == {logging.ERROR, logging.WARNING}
    assert all("unreachable" in r.getMessage() for r in errors)


# -- the decorator and the middleware on FastAPI and Starlette apps ---------------------------
def test_decorator_on_fastapi_routes_keeps_their_openapi(tmp_path: Path) -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @rate_limit("2/minute", url=f"sqlite:///{tmp_path}/tasks.db")
    def item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item": item_id, "q": q}

    with TestClient(app) as client:
        assert client.get("/items/5?q=z").json() == {"item": 5, "q": "z"}
        # FastAPI still validates; a request it refuses never reaches the limit
        assert client.get("/items/x").status_code == 422
        assert client.get("/items/6").status_code == 200
        refused = client.get("/items/7")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    params = app.openapi()["paths"]["/items/{item_id}"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["item_id", "q"]


def test_middleware_limits_paths_and_methods_in_fastapi(url: str) -> None:
    app = FastAPI()
    app.add_middleware(RateLimitMiddleware, url=url, limits=[
        RateLimit("2/minute", path="/login", methods=["POST"]),
        RateLimit("5/minute", path="/api/"),
    ])

    @app.post("/login")
    def login() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/login")
    def login_page() -> dict[str, bool]:
        return {"page": True}

    @app.get("/api/a")
    def api_a() -> dict[str, str]:
        return {"a": "a"}

    @app.get("/api/b")
    def api_b() -> dict[str, str]:
        return {"b": "b"}

    with TestClient(app) as client:
        logins = [client.post("/login") for _ in range(3)]
        pages = [client.get("/login") for _ in range(4)]
        api = [client.get(f"/api/{'ab'[i % 2]}") for i in range(6)]
    assert [r.status_code for r in logins] == [200, 200, 429]
    assert logins[0].headers["ratelimit-remaining"] == "1"
    assert logins[2].headers["retry-after"]
    assert [r.status_code for r in pages] == [200] * 4
    assert "ratelimit-limit" not in pages[0].headers
    assert [r.status_code for r in api] == [200] * 5 + [429]  # /api/a and /api/b together
    assert api[4].headers["ratelimit-remaining"] == "0"


def test_middleware_in_a_starlette_app_and_rate_strings() -> None:
    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    app = Starlette(routes=[Route("/", home)], middleware=[
        Middleware(RateLimitMiddleware, limits="2/minute", headers=False)])
    with TestClient(app) as client:
        codes = [client.get("/") for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert "ratelimit-limit" not in codes[0].headers
    assert codes[2].headers["retry-after"]


def test_middleware_in_a_qakeapi_app_uses_the_queue_url(tmp_path: Path) -> None:
    app = QakeAPI(queue_url=f"sqlite:///{tmp_path}/tasks.db")
    app.add_middleware(RateLimitMiddleware, limits=["2/minute"])

    @app.get("/")
    def home() -> str:
        return "home"

    with TestClient(app) as client:
        codes = [client.get("/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    with sqlite3.connect(tmp_path / "tasks.db") as conn:
        [(hits,)] = conn.execute("SELECT count FROM qakeapi_ratelimit").fetchall()
    assert hits == 3


def test_client_ip_is_the_peer_address() -> None:
    connection = HTTPConnection({"type": "http", "client": ("10.0.0.7", 5000), "headers": []})
    assert client_ip(connection) == "10.0.0.7"
    assert client_ip(HTTPConnection({"type": "http", "headers": []})) == "unknown"


def test_a_huge_client_key_is_stored_as_its_digest(tmp_path: Path) -> None:
    app = QakeAPI(queue_url=f"sqlite:///{tmp_path}/tasks.db")

    @app.get("/x")
    @rate_limit("1/minute", key=by_header)
    def x() -> str:
        return "ok"

    with TestClient(app) as client:
        codes = [client.get("/x", headers={"x-client": "k" * 5000}).status_code
                 for _ in range(2)]
    assert codes == [200, 429]
    with sqlite3.connect(tmp_path / "tasks.db") as conn:
        [(key,)] = conn.execute("SELECT key FROM qakeapi_ratelimit").fetchall()
    assert len(key) < 300 and "sha256:" in key


# -- under uvicorn -------------------------------------------------------------------------
def test_429_with_retry_after_under_uvicorn(url: str) -> None:
    app = limited_app(url)
    app.add_middleware(RateLimitMiddleware, limits=[RateLimit("3/minute", path="/free")])
    with serve(app) as base:
        items = [httpx.get(f"{base}/items/{i}") for i in range(3)]
        free = [httpx.get(f"{base}/free") for _ in range(4)]
    assert [r.status_code for r in items] == [200, 200, 429]
    assert 1 <= int(items[2].headers["retry-after"]) <= 60
    assert [r.status_code for r in free] == [200, 200, 200, 429]
    assert free[0].headers["ratelimit-remaining"] == "2"
    assert free[3].json() == {"detail": "rate limit exceeded: 3 per 60 s"}


# -- connections are closed at shutdown ------------------------------------------------------
def connected_clients(client: Any) -> int:
    return len(client.client_list()) - 1  # less the one asking


@pytest.mark.parametrize("where", ["qakeapi decorator", "fastapi middleware"])
def test_storage_connections_close_at_shutdown(tmp_path: Path, where: str) -> None:
    port = free_port()
    with private_redis(tmp_path, port):
        url = f"redis://127.0.0.1:{port}/0"
        app: Any
        if where == "qakeapi decorator":
            app = QakeAPI()

            @app.get("/x")
            @rate_limit("5/minute", url=url)
            def x() -> str:
                return "ok"
        else:
            app = FastAPI()
            app.add_middleware(RateLimitMiddleware, url=url, limits=["5/minute"])

            @app.get("/x")
            def y() -> str:
                return "ok"

        observer = redis.Redis(port=port)
        before = connected_clients(observer)
        with TestClient(app) as client:
            assert client.get("/x").status_code == 200
            assert connected_clients(observer) == before + 1
        assert connected_clients(observer) == before
        observer.close()
