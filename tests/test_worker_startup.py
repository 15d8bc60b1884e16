"""A worker is listed as soon as it reports started: right after ``async with QueuedTasks``
(embedded worker) and right after ``qakeapi queue start`` prints its line, ``workers()``
and ``queue status`` show it — on every backend."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qakeapi.queued_tasks import QueuedTasks

from ._processes import env_for, start_worker, stop, write_task_app
from ._redis import redis_queue_url
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture


@pytest.mark.anyio
async def test_the_embedded_worker_is_listed_once_the_queue_is_entered(
        queue_url: str) -> None:  # noqa: F811
    for _ in range(20):
        async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
            assert tasks.embedded_worker is not None
            assert [info.id for info in await tasks.workers()] == [tasks.embedded_worker.id]
        async with QueuedTasks(settings=fast_settings(queue_url),
                               embedded_worker=False) as tasks:
            assert await tasks.workers() == []


def first_stderr_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stderr is not None
    ready, _, _ = select.select([process.stderr], [], [], timeout)
    assert ready, "the worker printed nothing"
    return process.stderr.readline().decode()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_queue_status_lists_a_worker_as_soon_as_it_says_it_started(
        tmp_path: Path, backend: str) -> None:
    write_task_app(tmp_path)
    with redis_queue_url() as redis_url:
        url = f"sqlite:///{tmp_path}/queue.db" if backend == "sqlite" else redis_url
        worker = start_worker(tmp_path, url, concurrency=2)
        try:
            line = first_stderr_line(worker, 60)
            assert line.startswith("worker "), line
            worker_id = line.split()[1].rstrip(":")
            status = subprocess.run(
                [sys.executable, "-m", "qakeapi", "queue", "status", "--url", url, "--json"],
                cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True,
                timeout=60, check=True)
            assert [w["id"] for w in json.loads(status.stdout)["workers"]] == [worker_id]
        finally:
            stop(worker, signal.SIGTERM)
