"""The examples of docs/fastapi.md run: a FastAPI app and a Starlette app with the task
middleware and lifespan."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager, TaskStatus
from qakeapi.testing import TestClient

from . import _docs as docs


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # the examples use sqlite:///tasks.db
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def run_block(marker: str) -> dict[str, Any]:
    return docs.run_block("docs/fastapi.md", marker, module="docs_fastapi")


def wait_succeeded(client: TestClient, ns: dict[str, Any], task_id: str) -> Any:
    assert client.portal is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = client.portal.call(ns["queue"].get, task_id)
        if record is not None and record.status is TaskStatus.SUCCEEDED:
            return record
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not succeed")


def test_fastapi_example() -> None:
    ns = run_block("FastAPI(lifespan=lifespan)")
    with TestClient(ns["app"]) as client:
        response = client.post("/signup", params={"email": "ada@example.com"})
        assert response.status_code == 200
        wait_succeeded(client, ns, response.json()["task"])
        deadline = time.monotonic() + 30
        while not ns["signups"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ns["signups"] == ["ada@example.com"]


def test_starlette_example() -> None:
    ns = run_block("Starlette(routes=")
    with TestClient(ns["app"]) as client:
        response = client.post("/images/7")
        assert response.status_code == 202
        wait_succeeded(client, ns, response.json()["task"])
