"""The metrics endpoint served by real uvicorn while two real worker processes run the tasks
(prometheus-client's multiprocess mode), against a real SQLite queue."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from ._processes import env_for, stop, wait_until
from ._server import free_port
from .test_metrics import series

pytestmark = pytest.mark.slow

OK_TASKS = 6
FAILING_TASKS = 2
RETRIES = 2

APP = f'''
import os

import anyio
from qakeapi import Inject, QakeAPI
from qakeapi.exceptions import Retry
from qakeapi.metrics import metrics_app
from qakeapi.queued_tasks import QueuedTasks

app = QakeAPI()
tasks = app.queued_tasks
app.mount("/metrics", metrics_app(tasks))


@tasks.task(name="ok")
async def ok(i):
    await anyio.sleep(0.05)
    return os.getpid()


@tasks.task(name="boom", max_retries={RETRIES})
async def boom(i):
    raise Retry(delay=0, reason="boom")


@app.post("/add")
async def add(tasks: QueuedTasks = Inject(QueuedTasks)):
    for i in range({OK_TASKS}):
        tasks.add_task(ok, i)
    for i in range({FAILING_TASKS}):
        tasks.add_task(boom, i)
    later = [tasks.add_task(ok, -1, delay=3600).id for _ in range(2)]
    return {{"later": later}}


@app.post("/cancel/{{task_id}}")
async def cancel(task_id: str, tasks: QueuedTasks = Inject(QueuedTasks)):
    record = await tasks.cancel(task_id)
    return {{"status": record.status.value}}
'''


def test_counts_of_every_worker_process_add_up(tmp_path: Path) -> None:
    (tmp_path / "obsapp.py").write_text(textwrap.dedent(APP))
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    env = env_for(tmp_path, QUEUE_URL=url, QUEUE_EMBEDDED_WORKER="0",
                  PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "run", "obsapp:app", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    workers = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "start", "--app", "obsapp:app",
         "--workers", "2", "--concurrency", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            try:
                return series(httpx.get(f"{base}/metrics/", timeout=5).text)
            except httpx.HTTPError:
                return {}

        wait_until(lambda: scrape().get(("qakeapi_workers_alive", ())) == 2, 60,
                   "two live workers")
        later = httpx.post(f"{base}/add", timeout=10).json()["later"]
        assert httpx.post(f"{base}/cancel/{later[0]}", timeout=10).json() == {
            "status": "cancelled"}

        def settled() -> bool:
            got = scrape()
            return (got.get(("qakeapi_queue_tasks", (("state", "succeeded"),))) == OK_TASKS
                    and got.get(("qakeapi_queue_tasks", (("state", "failed"),)))
                    == FAILING_TASKS)

        wait_until(settled, 60, "every task to end")
        got = scrape()
    finally:
        stop(workers)
        stop(server)

    def value(metric: str, /, **labels: str) -> float:
        return got.get((metric, tuple(sorted(labels.items()))), 0.0)

    attempts_boom = FAILING_TASKS * (RETRIES + 1)
    assert value("qakeapi_task_attempts_total", name="ok") == OK_TASKS
    assert value("qakeapi_task_attempts_total", name="boom") == attempts_boom
    assert value("qakeapi_tasks_finished_total", name="ok", state="succeeded") == OK_TASKS
    assert value("qakeapi_tasks_finished_total", name="ok", state="cancelled") == 1
    assert value("qakeapi_tasks_finished_total", name="boom", state="failed") == FAILING_TASKS
    assert value("qakeapi_task_retries_total", name="boom") == FAILING_TASKS * RETRIES
    assert value("qakeapi_task_duration_seconds_count", name="ok",
                 outcome="succeeded") == OK_TASKS
    assert value("qakeapi_task_duration_seconds_sum", name="ok",
                 outcome="succeeded") >= OK_TASKS * 0.05
    assert value("qakeapi_task_duration_seconds_count", name="boom",
                 outcome="retrying") == FAILING_TASKS * RETRIES
    assert value("qakeapi_task_duration_seconds_bucket", name="ok", outcome="succeeded",
                 le="+Inf") == OK_TASKS
    assert value("qakeapi_queue_tasks", state="pending") == 1
    assert value("qakeapi_queue_tasks", state="running") == 0
    assert value("qakeapi_queue_tasks", state="cancelled") == 1
    assert value("qakeapi_queue_oldest_pending_age_seconds") == 0
    assert value("qakeapi_workers_alive") == 2
    assert value("qakeapi_worker_slots", use="capacity") == 4
    assert value("qakeapi_queue_up") == 1
    writers = {path.name for path in multiproc.glob("counter_*.db")}
    assert len(writers) >= 3, writers  # the server and both worker processes counted
