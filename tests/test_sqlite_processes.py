"""Real worker processes on one real SQLite file: crashes, several workers, durability."""

from __future__ import annotations

import collections
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from qakeapi.queued_tasks import QueuedTasks
from qakeapi.types import TaskStatus

from ._processes import env_for, read_runs, start_worker, stop, wait_until, write_task_app
from ._server import free_port

pytestmark = pytest.mark.slow


def enqueue(directory: Path, url: str, count: int, seconds: float = 0.0) -> None:
    sys.path.insert(0, str(directory))
    try:
        import taskapp  # type: ignore[import-not-found]

        async def main() -> None:
            async with QueuedTasks(url, embedded_worker=False) as tasks:
                for i in range(count):
                    tasks.add_task(taskapp.work, i, seconds)
                await tasks.flush()

        anyio.run(main)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("taskapp", None)


def counts(url: str) -> dict[TaskStatus, int]:
    async def main() -> dict[TaskStatus, int]:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            return (await tasks.stats()).counts

    return anyio.run(main)


def test_sigkill_during_1000_tasks_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    enqueue(tmp_path, url, 1000, seconds=0.02)
    first = start_worker(tmp_path, url, concurrency=32, QUEUE_LEASE_SECONDS="2")
    try:
        wait_until(lambda: len(read_runs(runs_file)) >= 200, 60, "200 runs")
    finally:
        stop(first, signal.SIGKILL)
    killed_at = len(read_runs(runs_file))
    assert killed_at < 1000, "the worker finished everything before it was killed"
    second = start_worker(tmp_path, url, concurrency=32, QUEUE_LEASE_SECONDS="2")
    try:
        wait_until(lambda: counts(url)[TaskStatus.SUCCEEDED] == 1000, 90, "all 1000 succeeded")
    finally:
        stop(second)
    runs = read_runs(runs_file)
    assert set(runs) == set(range(1000))
    duplicates = len(runs) - 1000
    print(f"duplicate runs after SIGKILL: {duplicates}")
    # Only tasks in flight on the killed worker (running, or finished but not yet stored)
    # may run twice: at most two rounds of its concurrency.
    assert duplicates <= 64
    final = counts(url)
    assert final[TaskStatus.PENDING] == final[TaskStatus.RUNNING] == final[TaskStatus.FAILED] == 0


def test_three_worker_processes_run_5000_tasks_once(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    enqueue(tmp_path, url, 5000)
    supervisor = start_worker(tmp_path, url, concurrency=16, workers=3)
    try:
        wait_until(lambda: counts(url)[TaskStatus.SUCCEEDED] == 5000, 120, "5000 succeeded")
    finally:
        stop(supervisor)
    assert supervisor.returncode == 0
    runs = collections.Counter(read_runs(runs_file))
    assert set(runs) == set(range(5000))
    assert max(runs.values()) == 1


def test_queued_response_means_stored(tmp_path: Path) -> None:
    runs_file = write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "run", "taskapp:app", "--port", str(port)],
        cwd=tmp_path, env=env_for(tmp_path, QUEUE_URL=url, QUEUE_EMBEDDED_WORKER="0"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/queue/42", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert response.json()["queued"] is True
    finally:
        stop(server, signal.SIGKILL)
    assert read_runs(runs_file) == []
    worker = start_worker(tmp_path, url, concurrency=4)
    try:
        wait_until(lambda: read_runs(runs_file) == [42], 30, "the stored task to run")
    finally:
        stop(worker)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qakeapi", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, env=env_for(cwd))


@pytest.mark.parametrize("case", ["not-a-database", "missing-directory", "read-only-fs"])
def test_cli_on_unusable_queue_file(tmp_path: Path, case: str) -> None:
    if case == "not-a-database":
        (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
        url = f"sqlite:///{tmp_path}/junk.db"
    elif case == "missing-directory":
        url = f"sqlite:///{tmp_path}/nope/queue.db"
    else:
        url = "sqlite:////proc/qakeapi-queue.db"
    for command in (["queue", "status", "--url", url],
                    ["queue", "start", "--app", "taskapp:app", "--url", url]):
        write_task_app(tmp_path)
        result = cli(*command, cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "SQLite queue" in result.stderr, result.stderr


def test_sigterm_finishes_short_tasks_and_gives_back_long_ones(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    sys.path.insert(0, str(tmp_path))
    try:
        import taskapp

        async def add() -> tuple[str, str]:
            async with QueuedTasks(url, embedded_worker=False) as tasks:
                short = tasks.add_task(taskapp.work, 1, 1.0)
                long = tasks.add_task(taskapp.work, 2, 60.0)
                await tasks.flush()
                return short.id, long.id

        short_id, long_id = anyio.run(add)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("taskapp", None)
    worker = start_worker(tmp_path, url, concurrency=4, QUEUE_SHUTDOWN_GRACE="2")
    try:
        wait_until(lambda: counts(url)[TaskStatus.RUNNING] == 2, 30, "both tasks running")
    finally:
        stop(worker, signal.SIGTERM)
    assert worker.returncode == 0

    async def read() -> tuple[Any, Any]:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            return await tasks.get(short_id), await tasks.get(long_id)

    short, long = anyio.run(read)
    assert short.status is TaskStatus.SUCCEEDED
    assert (long.status, long.worker_id, long.lease_expires_at) == (TaskStatus.PENDING, None,
                                                                    None)
    assert read_runs(runs_file) == [1]


@pytest.mark.anyio
async def test_corrupt_row_fails_that_task_only(tmp_path: Path) -> None:
    from qakeapi.queued_tasks.backends import open_storage
    from qakeapi.types import TaskRecord

    url = f"sqlite:///{tmp_path}/queue.db"
    storage = open_storage(url)
    await storage.connect()
    try:
        records = [TaskRecord(id=name, name="m:f", args=[], kwargs={}, created_at=float(i))
                   for i, name in enumerate(["bad", "good"])]
        await storage.enqueue(records)
        with sqlite3.connect(tmp_path / "queue.db") as conn:
            conn.execute("UPDATE tasks SET args = '{not json' WHERE id = 'bad'")
        shown = await storage.get("bad")
        assert shown is not None and shown.error is not None
        assert shown.error.type == "CorruptTaskError" and "args" in shown.error.message
        claimed = await storage.claim("w", 10, 30)
        assert [r.id for r in claimed] == ["good"]
        with sqlite3.connect(tmp_path / "queue.db") as conn:
            status, error = conn.execute(
                "SELECT status, error FROM tasks WHERE id = 'bad'").fetchone()
        assert status == "failed" and "CorruptTaskError" in error
    finally:
        await storage.close()
    result = subprocess.run([sys.executable, "-m", "qakeapi", "queue", "show", "bad", "--url",
                             url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "failed" in result.stdout and "corrupt row: task bad: args" in result.stdout
