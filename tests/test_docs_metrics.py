"""The examples of docs/metrics.md run: the endpoint mounted in a qakeapi and a FastAPI app,
and the traces setup (in a fresh process: it sets the global tracer provider)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager
from qakeapi.testing import AsyncTestClient, TestClient

from . import _docs as docs
from ._docs import python_blocks
from .test_metrics import series


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # the examples use sqlite:///tasks.db
    BackgroundTaskManager.reset()
    yield
    BackgroundTaskManager.reset()


def block(marker: str) -> str:
    [found] = [b for b in python_blocks("docs/metrics.md") if marker in b]
    return found


def run_block(marker: str) -> dict[str, Any]:
    return docs.run_block("docs/metrics.md", marker, module="docs_metrics")


@pytest.mark.anyio
async def test_qakeapi_app_serves_metrics() -> None:
    ns = run_block("def send_invoice")
    app = ns["app"]
    async with AsyncTestClient(app) as client:
        ref = await app.queued_tasks.enqueue(ns["send_invoice"], 7)
        await ref.wait(timeout=10)
        got = series((await client.get("/metrics/")).text)
    name = "docs_metrics:send_invoice"
    assert got[("qakeapi_tasks_finished_total", (("name", name), ("state", "succeeded")))] >= 1
    assert got[("qakeapi_queue_tasks", (("state", "succeeded"),))] == 1
    assert got[("qakeapi_workers_alive", ())] == 1


def test_fastapi_app_serves_metrics() -> None:
    ns = run_block("app = FastAPI(lifespan=lifespan)")
    with TestClient(ns["app"]) as client:
        response = client.get("/metrics/")
    assert response.status_code == 200
    got = series(response.text)
    assert got[("qakeapi_queue_up", ())] == 1
    assert got[("qakeapi_background_tasks", (("state", "running"),))] == 0


TRACE_RUN = '''
import anyio, httpx
from example import app, provider, traced


async def main():
    async with app.lifespan():
        transport = httpx.ASGITransport(app=traced)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            task_id = (await client.post("/images/5")).json()["task"]
        with anyio.fail_after(20):
            while (await app.queued_tasks.get(task_id)).status.value != "succeeded":
                await anyio.sleep(0.02)
    provider.force_flush()

anyio.run(main)
'''


def test_traces_setup_links_the_request_to_the_task(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(block("OpenTelemetryMiddleware(app)"))
    (tmp_path / "run.py").write_text(textwrap.dedent(TRACE_RUN))
    result = subprocess.run([sys.executable, "run.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=True)
    decoder, text, spans = json.JSONDecoder(), result.stdout, []
    position = 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        span, position = decoder.raw_decode(text, position)
        spans.append(span)
    by_name = {span["name"]: span for span in spans}
    request = by_name["POST /images/5"]
    attempt = by_name["task example:resize"]
    assert attempt["kind"] == "SpanKind.CONSUMER"
    assert attempt["context"]["trace_id"] == request["context"]["trace_id"]
    assert attempt["parent_id"] == request["context"]["span_id"]
    assert attempt["attributes"]["qakeapi.task.outcome"] == "succeeded"
