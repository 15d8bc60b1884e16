"""The examples of docs/routing.md, websockets.md, errors.md and middleware.md run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qakeapi.testing import TestClient

from . import _docs as docs


def run_block(path: str, marker: str, ns: dict[str, Any] | None = None) -> dict[str, Any]:
    return docs.run_block(path, marker, ns, module="docs_web")


def test_routing_options() -> None:
    ns = run_block("docs/routing.md", "def get_item")
    with TestClient(ns["app"]) as client:
        assert client.get("/items/1").json() == {"name": "pen", "price": 1.5}
        created = client.post("/items", json={"name": "ink", "price": 3})
        assert (created.status_code, created.json()) == (201, {"name": "ink", "price": 3.0})
        deleted = client.delete("/items/1")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert client.get("/items/1").status_code == 404
        assert client.post("/items", json={"name": "ink"}).status_code == 422
    [route] = [r for r in ns["app"].routes if r.name == "get_item"]
    assert (route.path, route.endpoint.options.tags) == ("/items/{item_id}", ("items",))
    assert route.endpoint.options.summary == "One item"


def test_routing_response_parameter() -> None:
    ns = run_block("docs/routing.md", "def login")
    with TestClient(ns["app"]) as client:
        login = client.post("/login")
        assert (login.status_code, login.json()) == (201, {"logged_in": True})
        assert login.headers["x-login"] == "ok"
        assert "session=abc123" in login.headers["set-cookie"]
        assert "httponly" in login.headers["set-cookie"].lower()
        assert client.cookies["session"] == "abc123"
        moved = client.get("/moved")
        assert (moved.status_code, moved.json()) == (202, {"later": True})


def test_routing_other_responses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.csv").write_text("a,b\n")
    ns = run_block("docs/routing.md", "def numbers")
    with TestClient(ns["app"], follow_redirects=False) as client:
        assert client.get("/numbers").text == "0\n1\n2\n"
        assert client.get("/report").text == "a,b\n"
        old = client.get("/old")
        assert (old.status_code, old.headers["location"]) == (308, "/numbers")


def test_websockets_page() -> None:
    ns = run_block("docs/websockets.md", "def chat")
    run_block("docs/websockets.md", "websocket_connect", ns)  # asserts what it received
    with TestClient(ns["app"]) as client, client.websocket_connect(
            "/rooms/red?name=bo") as ws:
        ws.send_text("hi")
        assert ws.receive_json()["from"] == "bo"


def test_errors_handlers() -> None:
    ns = run_block("docs/errors.md", "def out_of_stock")
    with TestClient(ns["app"]) as client:
        pens = client.get("/buy/pens")
        assert (pens.status_code, pens.json()) == (409, {"detail": "pens is out of stock"})
        secret = client.get("/buy/secret")
        assert (secret.status_code, secret.headers["www-authenticate"]) == (401, "Bearer")
        assert client.get("/buy/ink").json() == {"bought": "ink"}
        missing = client.get("/nowhere")
        assert (missing.status_code, missing.text) == (404, "nothing at /nowhere")


def test_errors_in_tests() -> None:
    run_block("docs/errors.md", "def boom")


def test_middleware_one_liners() -> None:
    ns = run_block("docs/middleware.md", "def add_version")
    with TestClient(ns["app"], base_url="http://example.com") as client:
        report = client.get("/report", headers={"accept-encoding": "gzip"})
        assert report.headers["content-encoding"] == "gzip"
        assert report.headers["x-api-version"] == "1"
        assert report.json() == {"rows": ["x" * 100] * 20}  # httpx decompressed it
        preflight = client.options("/report", headers={
            "origin": "https://app.example.com", "access-control-request-method": "GET"})
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert client.post("/upload", content=b"x" * 1000).json() == {"size": 1000}
        assert client.post("/upload", content=b"x" * (64 * 1024 + 1)).status_code == 413
    with TestClient(ns["app"], base_url="http://evil.test") as client:
        refused = client.get("/report")
        assert (refused.status_code, refused.text) == (400, "Invalid host header")


def test_routing_conditional_routes() -> None:
    ns = run_block("docs/routing.md", "def is_mobile")
    with TestClient(ns["app"]) as client:
        phone = client.get("/home", headers={"user-agent": "Mozilla/5.0 (iPhone) Mobile"})
        assert phone.json() == {"layout": "compact"}
        assert client.get("/home", headers={"user-agent": "curl/8"}).json() == {"layout": "full"}
        assert client.get("/openapi.json").json()["paths"]["/home"]["get"]["operationId"] == (
            "home_home_get")
