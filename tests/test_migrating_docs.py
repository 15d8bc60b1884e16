"""The examples of docs/migrating.md run, and the files it links exist."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager
from qakeapi.testing import TestClient

from . import _docs as docs
from ._docs import ROOT, python_blocks

DOC = "docs/migrating.md"
MARKERS = ["class Order(BaseModel)", "def is_mobile", "async def get_token_header"]


@pytest.fixture(autouse=True)
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path}/tasks.db")
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def run_block(marker: str) -> dict[str, Any]:
    return docs.run_block(DOC, marker, module="docs_migrating")


def test_every_block_is_run_here_and_every_link_exists() -> None:
    blocks = python_blocks(DOC)
    assert len(blocks) == len(MARKERS)
    assert all(any(m in b for m in MARKERS) for b in blocks)
    text = (ROOT / DOC).read_text()
    for link in re.findall(r"\]\(\.\./([^)]+)\)", text):
        assert (ROOT / link).exists(), link


def test_a_qakeapi_131_app_moved_over() -> None:
    ns = run_block("class Order(BaseModel)")
    with TestClient(ns["app"]) as client:
        placed = [client.post("/orders", json={"item": "tea", "qty": 2}) for _ in range(4)]
        bad = client.post("/orders", json={"qty": "many"})
        deadline = time.monotonic() + 10
        while len(ns["notified"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert [r.status_code for r in placed] == [201, 201, 201, 429]
    assert placed[0].json() == {"order": {"item": "tea", "qty": 2}}
    assert placed[3].headers["retry-after"]
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["detail"]] == [["body", "item"], ["body", "qty"]]
    assert ns["notified"] == ["tea"] * 3
    assert ns["placed"] == [{"item": "tea", "qty": 2}] * 3


def test_conditional_route_and_middleware() -> None:
    ns = run_block("def is_mobile")
    with TestClient(ns["app"]) as client:
        mobile = client.get("/page", headers={"user-agent": "Phone Mobile Safari"})
        desktop = client.get("/page", headers={"user-agent": "Firefox"})
    assert mobile.json() == {"layout": "mobile"}
    assert desktop.json() == {"layout": "desktop"}
    assert desktop.headers["x-served-by"] == "qakeapi"


def test_fastapi_router_moved_over() -> None:
    ns = run_block("async def get_token_header")
    header = {"x-token": "fake-super-secret-token"}
    with TestClient(ns["app"]) as client:
        found = client.get("/items/plumbus", headers=header)
        missing = client.get("/items/gun", headers=header)
        refused = client.get("/items/plumbus", headers={"x-token": "no"})
        absent = client.get("/items/plumbus")
    assert found.json() == {"name": "Plumbus", "item_id": "plumbus"}
    assert (missing.status_code, missing.json()) == (404, {"detail": "Item not found"})
    assert (refused.status_code, refused.json()) == (400, {"detail": "X-Token header invalid"})
    assert absent.status_code == 422
    assert absent.json()["detail"][0]["loc"] == ["header", "x-token"]
