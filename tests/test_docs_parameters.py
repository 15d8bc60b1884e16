"""The examples of docs/parameters.md and docs/dependencies.md run, and do what the text
says."""

from __future__ import annotations

import pytest

from qakeapi.dependencies import DependencyError, check_dependencies
from qakeapi.testing import TestClient

from ._docs import run_block


def test_parameters_page_markers_and_bodies() -> None:
    ns = run_block("docs/parameters.md", "def read_item")
    with TestClient(ns["app"]) as client:
        got = client.get("/items/3?ids=1&ids=2&page=2&sort-by=qty",
                         headers={"user-agent": "probe", "cookie": "session=s"}).json()
        assert got == {"item_id": 3, "ids": [1, 2], "page": 2, "sort": "qty",
                       "agent": "probe", "session": "s"}
        bad = client.get("/items/0?ids=1&ids=x&sort-by=price")
        assert bad.status_code == 422
        assert [e["loc"] for e in bad.json()["detail"]] == [
            ["path", "item_id"], ["query", "ids", 1], ["query", "sort-by"]]
        assert client.post("/items", json={"name": "pen", "qty": 2}).json() == {
            "name": "pen", "total": 2}
        assert client.post("/items", json={"name": "pen", "qty": "lots"}).json()[
            "detail"][0]["loc"] == ["body", "qty"]
        assert client.put("/items/4", json={"item": {"name": "pen", "qty": 1},
                                            "note": "n"}).json() == {
            "item_id": 4, "name": "pen", "note": "n"}


def test_parameters_page_forms_and_files() -> None:
    ns = run_block("docs/parameters.md", "def upload")
    with TestClient(ns["app"]) as client:
        assert client.post("/login", data={"username": "ada", "remember": "on"}).json() == {
            "username": "ada", "remember": True}
        assert client.post("/login", data={"username": "a"}).status_code == 422
        files = [("doc", ("a.txt", b"abc")), ("thumbnail", ("t.png", b"12")),
                 ("extra", ("x", b"")), ("extra", ("y", b""))]
        assert client.post("/upload", files=files).json() == {
            "name": "a.txt", "size": 3, "thumbnail": 2, "extra": ["x", "y"]}


def test_parameters_page_error_example_is_what_is_sent() -> None:
    import json

    from qakeapi import Header, QakeAPI

    [block] = [b for b in _json_blocks("docs/parameters.md")]
    documented = json.loads(block)
    app = QakeAPI()

    @app.get("/")
    async def index(ids: list[int], x_token: str = Header()) -> None:
        return None

    with TestClient(app) as client:
        assert client.get("/?ids=1&ids=x").json() == documented


def _json_blocks(path: str) -> list[str]:
    import re

    from ._docs import ROOT

    return re.findall(r"```json\n(.*?)```", (ROOT / path).read_text(), re.S)


def test_dependencies_page_tree() -> None:
    ns = run_block("docs/dependencies.md", "def orders")
    with TestClient(ns["app"]) as client:
        got = client.get("/orders?limit=5", headers={"x-user": "ada"}).json()
        assert got == {"user": "ada", "page": {"limit": 5, "offset": 0}, "db_open": True,
                       "shop": "Ada's"}
        assert ns["DB"].log == ["open", "user ada", "closed"]  # one session per request
        assert ns["DB"].open is False
        bad = client.get("/orders?limit=0")
        assert [e["loc"] for e in bad.json()["detail"]] == [["header", "x-user"],
                                                            ["query", "limit"]]


def test_dependencies_page_teardown_before_background_tasks() -> None:
    ns = run_block("docs/dependencies.md", "def place")
    with TestClient(ns["app"]) as client:
        assert client.post("/orders/7").json() == {"order": 7}
    assert ns["events"] == ["session open", "session closed", "receipt 7"]


def test_dependencies_page_startup_check_message() -> None:
    from qakeapi import Inject, QakeAPI

    class Database:
        def __init__(self, dsn: str) -> None:
            self.dsn = dsn

    app = QakeAPI()

    @app.get("/orders")
    async def orders(db: Database = Inject(Database)) -> None:
        return None

    with pytest.raises(DependencyError) as caught:
        check_dependencies(app)
    message = str(caught.value)
    assert message.startswith("handler '") and "orders' (/orders): can't provide" in message
    assert "Database: its constructor needs arguments" in message


def test_dependencies_page_route_dependencies() -> None:
    ns = run_block("docs/dependencies.md", "def verify_key")
    with TestClient(ns["app"]) as client:
        refused = client.post("/admin/flush", headers={"x-key": "guess"})
        assert (refused.status_code, refused.json()) == (403, {"detail": "bad key"})
        assert client.post("/admin/flush").json()["detail"][0]["loc"] == ["header", "x-key"]
        assert ns["audit"] == []
        assert client.post("/admin/flush", headers={"x-key": "s3cret"}).json() == {
            "flushed": True}
    assert ns["audit"] == ["called"]
