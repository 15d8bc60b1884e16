"""The examples of docs/rate-limiting.md run, each app hit until its limits answer 429."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager
from qakeapi.testing import TestClient

from . import _docs as docs
from ._docs import python_blocks

DOC = "docs/rate-limiting.md"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # the examples use sqlite:///tasks.db
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def run_block(marker: str) -> dict[str, Any]:
    return docs.run_block(DOC, marker, module="docs_ratelimit")


def test_every_block_is_run_here() -> None:
    markers = ["async def search", "def api_key", "from fastapi import FastAPI"]
    assert len(python_blocks(DOC)) == len(markers)
    for block in python_blocks(DOC):
        assert any(marker in block for marker in markers)


def test_route_decorators() -> None:
    app = run_block("async def search")["app"]
    with TestClient(app) as client:
        searches = [client.get("/search", params={"q": "x"}) for _ in range(6)]
        reports = [client.get("/report/2024") for _ in range(3)]
    assert searches[0].json() == {"q": "x"}
    assert [r.status_code for r in searches] == [200] * 5 + [429]
    assert [r.status_code for r in reports] == [200, 200, 429]
    assert reports[2].headers["retry-after"]
    with sqlite3.connect("tasks.db") as conn:  # counted in the queue's file
        assert conn.execute("SELECT count(*) FROM qakeapi_ratelimit").fetchone()[0] == 3


def test_middleware_limits() -> None:
    app = run_block("def api_key")["app"]
    with TestClient(app) as client:
        logins = [client.post("/login").status_code for _ in range(4)]
        keyless = [client.get("/api/orders") for _ in range(5)]
        keyed = client.get("/api/orders", headers={"x-api-key": "k1"})
    assert logins == [200, 200, 200, 429]
    assert all(r.status_code == 200 and "ratelimit-limit" not in r.headers for r in keyless)
    assert keyed.headers["ratelimit-limit"] == "1000"
    assert keyed.headers["ratelimit-remaining"] == "999"


def test_fastapi_app() -> None:
    app = run_block("from fastapi import FastAPI")["app"]
    with TestClient(app) as client:
        codes = [client.get("/items/3").status_code for _ in range(3)]
        ok = client.get("/items/4")  # the decorator's 2/minute is per route, not per item
    assert codes == [200, 200, 429]
    assert ok.status_code == 429
    assert ok.headers["ratelimit-limit"] == "2"
