"""The metrics endpoint in one process: counters fed by a real worker, gauges read from
storage, the background manager's tasks; parsed with prometheus-client's own parser."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qakeapi import QakeAPI
from qakeapi.core.background import add_background_task
from qakeapi.exceptions import NoRetry
from qakeapi.metrics import metrics_app
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.testing import AsyncTestClient

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]

pytestmark = pytest.mark.anyio


def series(text: str) -> Series:
    """Every sample of an exposition text, by name and sorted labels."""
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def _noop(i: int) -> int:
    return i


async def _refuse(i: int) -> None:
    raise NoRetry(f"refused {i}")


async def test_counters_gauges_and_background_tasks(tmp_path: Path) -> None:
    app = QakeAPI(queue_url=f"sqlite:///{tmp_path / 'queue.db'}")
    tasks = app.queued_tasks
    tasks.register(_noop, name="noop")
    tasks.register(_refuse, name="refuse", max_retries=3)
    app.mount("/metrics", metrics_app(tasks))
    started, release = anyio.Event(), anyio.Event()

    async def hold() -> None:
        started.set()
        await release.wait()

    async with AsyncTestClient(app) as client:
        before = series((await client.get("/metrics/")).text)
        refs = [await tasks.enqueue(_noop, i) for i in range(3)]
        refs.append(await tasks.enqueue(_refuse, 1))
        for ref in refs:
            await ref.wait(timeout=10)
        await add_background_task(hold)
        await started.wait()
        response = await client.get("/metrics/")
        release.set()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    got = series(response.text)

    def delta(metric: str, /, **labels: str) -> float:
        key = (metric, tuple(sorted(labels.items())))
        return got.get(key, 0.0) - before.get(key, 0.0)

    assert delta("qakeapi_tasks_finished_total", name="noop", state="succeeded") == 3
    assert delta("qakeapi_tasks_finished_total", name="refuse", state="failed") == 1
    assert delta("qakeapi_task_retries_total", name="refuse") == 0
    assert delta("qakeapi_task_attempts_total", name="refuse") == 1
    assert delta("qakeapi_task_duration_seconds_count", name="noop", outcome="succeeded") == 3
    assert got[("qakeapi_queue_tasks", (("state", "succeeded"),))] == 3
    assert got[("qakeapi_queue_tasks", (("state", "failed"),))] == 1
    assert got[("qakeapi_queue_tasks", (("state", "pending"),))] == 0
    assert got[("qakeapi_workers_alive", ())] == 1
    assert got[("qakeapi_background_tasks", (("state", "running"),))] == 1
    assert got[("qakeapi_background_tasks", (("state", "pending"),))] == 0
    assert got[("qakeapi_queue_up", ())] == 1


async def test_oldest_pending_age_without_workers(tmp_path: Path) -> None:
    async with QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}", embedded_worker=False) as tasks:
        endpoint = metrics_app(tasks)
        await tasks.enqueue(_noop, 1)
        await tasks.enqueue(_noop, 2, delay=3600)
        added = time.time()
        await anyio.sleep(0.3)
        transport = httpx.ASGITransport(app=endpoint)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            got = series((await client.get("/")).text)
            refused = await client.post("/")
    age = got[("qakeapi_queue_oldest_pending_age_seconds", ())]
    assert 0.3 <= age <= time.time() - added + 0.5
    assert got[("qakeapi_queue_tasks", (("state", "pending"),))] == 2
    assert got[("qakeapi_workers_alive", ())] == 0
    assert refused.status_code == 405


async def test_unreachable_storage_is_a_gauge_not_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    endpoint = metrics_app(QueuedTasks("sqlite:///unused.db"))
    transport = httpx.ASGITransport(app=endpoint)
    with caplog.at_level(logging.WARNING, logger="qakeapi.metrics"):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/")
    assert response.status_code == 200
    got = series(response.text)
    assert got[("qakeapi_queue_up", ())] == 0
    assert ("qakeapi_queue_tasks", (("state", "pending"),)) not in got
    assert "reading the queue's storage failed" in caplog.text


def test_prometheus_client_is_imported_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ("import sys, qakeapi, qakeapi.metrics, qakeapi.queued_tasks\n"
             "assert 'prometheus_client' not in sys.modules, 'imported at import time'\n")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'qakeapi\[metrics\]'"):
        metrics_app()
