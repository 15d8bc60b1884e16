"""The examples of docs/dashboard.md run: the dashboard mounted in a qakeapi and a FastAPI app,
a callable auth and a mask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from qakeapi import BackgroundTaskManager
from qakeapi.testing import TestClient

from . import _docs as docs

TOKEN = "docs-dashboard-token"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # the examples use sqlite:///tasks.db
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def run_block(marker: str) -> dict[str, Any]:
    return docs.run_block("docs/dashboard.md", marker, module="docs_dashboard")


@pytest.mark.parametrize("marker", ["QakeAPI(queue_url", "FastAPI(lifespan"])
def test_mounted(marker: str) -> None:
    ns = run_block(marker)
    with TestClient(ns["app"]) as client:
        assert client.get("/tasks/").status_code == 401
        page = client.get("/tasks/", headers={"X-Dashboard-Token": TOKEN})
        assert page.status_code == 200 and "Overview" in page.text
        assert client.get("/tasks/static/dashboard.css").status_code == 200


async def charge(amount: int, api_key: str) -> int:
    return amount


def test_callable_auth_and_mask(tmp_path: Path) -> None:
    ops = run_block("def is_operator")["ops"]
    masked_ns = run_block("def hide_secrets")
    with TestClient(ops) as client:
        assert client.get("/").status_code == 403
        assert client.get("/", headers={"x-forwarded-user": "ada"}).status_code == 200
    with TestClient(masked_ns["masked"]) as client:
        assert client.portal is not None
        queue = masked_ns["queue"]
        ref = client.portal.call(lambda: queue.enqueue(charge, 5, api_key="sk-live-123"))
        page = client.get(f"/task/{ref.id}",
                          headers={"X-Dashboard-Token": "a-long-random-token"})
        assert page.status_code == 200
        assert "sk-live-123" not in page.text and "***" in page.text


def test_paging_example(tmp_path: Path) -> None:
    from qakeapi.queued_tasks import QueuedTasks

    pending_ids = run_block("async def pending_ids")["pending_ids"]

    async def main() -> None:
        async with QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}", embedded_worker=False) as q:
            refs = [q.add_task(charge, i, api_key="k") for i in range(230)]
            q.add_task(charge_other, 1)
            await q.flush()
            name = (await q.get(refs[0].id)).name  # type: ignore[union-attr]
            assert await pending_ids(q, name) == [r.id for r in reversed(refs)]

    anyio.run(main)


async def charge_other(amount: int) -> int:
    return amount
