"""The apps of examples/migrated/ (docs/migrating.md) under a real uvicorn, every endpoint hit:
QakeAPI 1.3.1's complete_example.py and rate_limit_example.py, and FastAPI's "Bigger
Applications" tutorial app."""

from __future__ import annotations

import importlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import websocket as websocket_client

from qakeapi import BackgroundTaskManager

from ._server import serve


@pytest.fixture(autouse=True)
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The queue (and so the rate limits) of each app in a file of this test's own.
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path}/tasks.db")
    monkeypatch.setenv("QUEUE_EMBEDDED_WORKER", "0")
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def fresh_module(name: str) -> ModuleType:
    """The example module as a new import (its app and lists start empty)."""
    return importlib.reload(importlib.import_module(name))


def detail_locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


# -- QakeAPI 1.3.1: examples/complete_example.py ------------------------------------------
def test_qakeapi_131_complete_example_moved_over() -> None:
    example = fresh_module("examples.migrated.complete_app")
    with serve(example.app) as base, httpx.Client(base_url=base) as client:
        assert client.get("/users/5").json() == {"id": 5, "name": "User 5", "type": "sync"}
        assert detail_locs(client.get("/users/five")) == [["path", "id"]]
        assert client.get("/items/7").json() == {"item_id": 7, "name": "Item 7",
                                                 "type": "async"}

        created = client.post("/users", json={"name": "Ann", "email": "ann@example.com"})
        user = {"name": "Ann", "email": "ann@example.com", "age": None}
        assert created.json() == {"message": "User created", "user": user}
        assert detail_locs(client.post("/users", json={"name": "Bob", "age": "old"})) == [
            ["body", "email"], ["body", "age"]]
        deadline = time.monotonic() + 10
        while example.emails_sent != ["ann@example.com"]:  # the background task
            assert time.monotonic() < deadline, example.emails_sent
            time.sleep(0.01)
        assert example.users_created == [user]  # the event listener

        found = client.get("/search", params={"q": "tea", "limit": 2}).json()
        assert found == {"query": "tea", "limit": 2,
                         "results": ["Result 0 for tea", "Result 1 for tea"]}
        assert len(client.get("/search", params={"q": "tea"}).json()["results"]) == 10
        assert detail_locs(client.get("/search")) == [["query", "q"]]

        preflight = client.options("/users", headers={
            "origin": "https://example.org", "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert client.get("/items/1", headers={"origin": "https://example.org"}).headers[
            "access-control-allow-origin"] == "*"

        ws = websocket_client.create_connection(base.replace("http", "ws") + "/ws/lobby",
                                                timeout=10)
        try:
            assert json.loads(ws.recv()) == {"message": "Welcome to room lobby!"}
            ws.send(json.dumps({"say": "hi"}))
            assert json.loads(ws.recv()) == {"echo": {"say": "hi"}, "room": "lobby"}
        finally:
            ws.close()

        document = client.get("/openapi.json").json()
        assert document["info"]["title"] == "QakeAPI 1.2.0 Complete Example"
        assert {"/users/{id}", "/items/{item_id}", "/users", "/search"} <= set(
            document["paths"])
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")


# -- QakeAPI 1.3.1: examples/rate_limit_example.py ----------------------------------------
def test_qakeapi_131_rate_limit_example_moved_over(tmp_path: Path) -> None:
    example = fresh_module("examples.migrated.rate_limit_app")
    with serve(example.app) as base, httpx.Client(base_url=base) as client:
        strict = [client.get("/strict") for _ in range(6)]
        assert [r.status_code for r in strict] == [200] * 5 + [429]
        assert strict[0].json()["limit"] == "5 requests per minute"
        assert 1 <= int(strict[5].headers["retry-after"]) <= 60
        assert strict[5].headers["ratelimit-limit"] == "5"

        limited = [client.get("/limited").status_code for _ in range(11)]
        assert limited == [200] * 10 + [429]
        assert [client.get("/api/data").status_code for _ in range(11)] == [200] * 10 + [429]
        assert all(client.get("/public").status_code == 200 for _ in range(20))
        unlimited = [client.get("/unlimited") for _ in range(30)]
        assert all(r.status_code == 200 for r in unlimited)

        uploads = [client.post("/upload", json={"n": i}) for i in range(21)]
        assert uploads[3].json()["received"] == {"n": 3}
        assert [r.status_code for r in uploads] == [200] * 20 + [429]

        rick = [client.get("/user-specific", headers={"user-id": "rick"}).status_code
                for _ in range(4)]
        morty = client.get("/user-specific", headers={"user-id": "morty"})
        anonymous = [client.get("/user-specific").status_code for _ in range(4)]
        assert rick == [200, 200, 200, 429]
        assert morty.status_code == 200
        assert anonymous == [200, 200, 200, 429]

        preflight = client.options("/upload", headers={
            "origin": "https://example.org", "access-control-request-method": "POST",
            "access-control-request-headers": "content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
    with sqlite3.connect(tmp_path / "tasks.db") as conn:  # counted in the queue's file
        assert conn.execute("SELECT count(*) FROM qakeapi_ratelimit").fetchone()[0] >= 7


# -- FastAPI: "Bigger Applications - Multiple Files" ---------------------------------------
TOKEN = {"token": "jessica"}
HEADER = {"x-token": "fake-super-secret-token"}


def test_fastapi_bigger_applications_moved_over() -> None:
    app = fresh_module("examples.migrated.bigger_app.main").app
    with serve(app) as base, httpx.Client(base_url=base) as client:
        assert client.get("/", params=TOKEN).json() == {"message": "Hello Bigger Applications!"}
        assert client.get("/users/", params=TOKEN).json() == [{"username": "Rick"},
                                                              {"username": "Morty"}]
        assert client.get("/users/me", params=TOKEN).json() == {"username": "fakecurrentuser"}
        assert client.get("/users/foo", params=TOKEN).json() == {"username": "foo"}
        assert detail_locs(client.get("/users/")) == [["query", "token"]]
        wrong = client.get("/users/", params={"token": "monica"})
        assert (wrong.status_code, wrong.json()) == (400, {"detail": "No Jessica token provided"})

        assert client.get("/items/", params=TOKEN, headers=HEADER).json() == {
            "plumbus": {"name": "Plumbus"}, "gun": {"name": "Portal Gun"}}
        assert client.get("/items/plumbus", params=TOKEN, headers=HEADER).json() == {
            "name": "Plumbus", "item_id": "plumbus"}
        missing = client.get("/items/bar", params=TOKEN, headers=HEADER)
        assert (missing.status_code, missing.json()) == (404, {"detail": "Item not found"})
        assert detail_locs(client.get("/items/plumbus", params=TOKEN)) == [
            ["header", "x-token"]]
        bad_header = client.get("/items/plumbus", params=TOKEN, headers={"x-token": "nope"})
        assert (bad_header.status_code, bad_header.json()) == (
            400, {"detail": "X-Token header invalid"})
        assert client.put("/items/plumbus", params=TOKEN, headers=HEADER).json() == {
            "item_id": "plumbus", "name": "The great Plumbus"}
        forbidden = client.put("/items/bar", params=TOKEN, headers=HEADER)
        assert (forbidden.status_code, forbidden.json()) == (
            403, {"detail": "You can only update the item: plumbus"})

        assert client.post("/admin/", params=TOKEN, headers=HEADER).json() == {
            "message": "Admin getting schwifty"}
        assert client.post("/admin/", params=TOKEN).status_code == 422

        paths = client.get("/openapi.json").json()["paths"]
    assert paths["/items/{item_id}"]["put"]["tags"] == ["items", "custom"]
    assert set(paths["/items/{item_id}"]["put"]["responses"]) >= {"403", "404"}
    assert paths["/admin/"]["post"]["tags"] == ["admin"]
    assert "418" in paths["/admin/"]["post"]["responses"]
    assert paths["/users/"]["get"]["tags"] == ["users"]
    assert {p["name"] for p in paths["/items/"]["get"]["parameters"]} == {"token", "x-token"}
