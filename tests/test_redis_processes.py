"""Real worker processes on Redis: crashes, a Redis restart, cross-process cancel, errors."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from qakeapi.exceptions import BackendUnavailable
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.types import TaskStatus

from ._processes import env_for, read_runs, start_worker, stop, wait_until, write_task_app
from ._redis import private_redis, redis_queue_url
from ._server import free_port

pytestmark = pytest.mark.slow


def with_taskapp(directory: Path):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(directory))
    sys.modules.pop("taskapp", None)
    import taskapp  # type: ignore[import-not-found]

    return taskapp


def enqueue(directory: Path, url: str, count: int, seconds: float = 0.0) -> list[str]:
    taskapp = with_taskapp(directory)

    async def main() -> list[str]:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            refs = [tasks.add_task(taskapp.work, i, seconds) for i in range(count)]
            await tasks.flush()
            return [ref.id for ref in refs]

    return anyio.run(main)


def counts(url: str) -> dict[TaskStatus, int]:
    async def main() -> dict[TaskStatus, int]:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            return (await tasks.stats()).counts

    return anyio.run(main)


def status_of(url: str, task_id: str) -> TaskStatus | None:
    async def read() -> TaskStatus | None:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            record = await tasks.get(task_id)
            return None if record is None else record.status

    return anyio.run(read)


def test_sigkill_one_of_two_workers_during_2000_tasks(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = write_task_app(tmp_path)
    with redis_queue_url() as url:
        enqueue(tmp_path, url, 2000, seconds=0.02)
        victim = start_worker(tmp_path, url, concurrency=16, QUEUE_LEASE_SECONDS="2")
        survivor = start_worker(tmp_path, url, concurrency=16, QUEUE_LEASE_SECONDS="2")
        try:
            wait_until(lambda: len(read_runs(runs_file)) >= 400, 60, "400 runs")
            stop(victim, signal.SIGKILL)
            wait_until(lambda: counts(url)[TaskStatus.SUCCEEDED] == 2000, 90, "2000 succeeded")
        finally:
            stop(victim, signal.SIGKILL)
            stop(survivor)
        final = counts(url)
    runs = collections.Counter(read_runs(runs_file))
    assert set(runs) == set(range(2000))
    duplicates = sum(runs.values()) - 2000
    print(f"duplicate runs after SIGKILL: {duplicates}")
    # Only the killed worker's in-flight tasks (running, or done but not yet stored) can run
    # twice: at most two rounds of its concurrency.
    assert duplicates <= 32
    assert final[TaskStatus.PENDING] == final[TaskStatus.RUNNING] == final[TaskStatus.FAILED] == 0


def test_redis_restart_while_workers_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = write_task_app(tmp_path)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    data = tmp_path / "redis-data"
    data.mkdir()
    persistence = ("--appendonly", "yes", "--appendfsync", "always")
    taskapp = with_taskapp(tmp_path)

    async def enqueue_one() -> None:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            await tasks.enqueue(taskapp.work, 9999)

    worker = None
    try:
        with private_redis(data, port, *persistence) as server:
            enqueue(tmp_path, url, 300, seconds=0.05)
            worker = start_worker(tmp_path, url, concurrency=8, QUEUE_LEASE_SECONDS="3")
            wait_until(lambda: len(read_runs(runs_file)) >= 50, 60, "50 runs")
            server.terminate()
            server.wait(10)
            with pytest.raises(BackendUnavailable, match="unreachable"):
                anyio.run(enqueue_one)
            time.sleep(1.0)
            assert worker.poll() is None, "the worker died during the outage"
        with private_redis(data, port, *persistence):
            wait_until(lambda: counts(url)[TaskStatus.SUCCEEDED] == 300, 90,
                       "300 succeeded after the restart")
            assert worker.poll() is None
    finally:
        if worker is not None:
            stop(worker)
    assert set(read_runs(runs_file)) == set(range(300))


def test_enqueue_error_when_redis_goes_down(tmp_path: Path) -> None:
    write_task_app(tmp_path)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    taskapp = with_taskapp(tmp_path)

    async def main() -> None:
        with private_redis(tmp_path, port) as server:
            async with QueuedTasks(url, embedded_worker=False) as tasks:
                stored = await tasks.enqueue(taskapp.work, 1)
                server.terminate()
                server.wait(10)
                with pytest.raises(BackendUnavailable, match="unreachable"):
                    await tasks.enqueue(taskapp.work, 2)
                ref = tasks.add_task(taskapp.work, 3)
                with pytest.raises(BackendUnavailable):
                    await ref.stored()
                assert stored.id

    anyio.run(main)


def test_cancel_running_task_from_another_process(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = write_task_app(tmp_path)
    with redis_queue_url() as url:
        [task_id] = enqueue(tmp_path, url, 1, seconds=30)
        worker = start_worker(tmp_path, url, concurrency=2)
        try:
            wait_until(lambda: status_of(url, task_id) is TaskStatus.RUNNING, 30,
                       "the task to start")
            result = subprocess.run(
                [sys.executable, "-m", "qakeapi", "queue", "cancel", task_id, "--url", url,
                 "--json"], cwd=tmp_path, env=env_for(tmp_path), capture_output=True,
                text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            asked = time.monotonic()

            wait_until(lambda: status_of(url, task_id) is TaskStatus.CANCELLED, 10,
                       "the task to be cancelled")
            print(f"cancelled {time.monotonic() - asked:.3f} s after the request")
        finally:
            stop(worker)
    assert read_runs(runs_file) == []


@pytest.mark.parametrize("case", ["unreachable", "wrong-password"])
def test_cli_clear_errors(tmp_path: Path, case: str) -> None:
    write_task_app(tmp_path)
    port = free_port()
    if case == "unreachable":
        url = f"redis://127.0.0.1:{port}/0"
        results = [subprocess.run(
            [sys.executable, "-m", "qakeapi", *command, "--url", url], cwd=tmp_path,
            env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
            for command in (["queue", "status"], ["queue", "start", "--app", "taskapp:app"])]
        expected = "unreachable"
    else:
        url = f"redis://:wrong@127.0.0.1:{port}/0"
        with private_redis(tmp_path, port, "--requirepass", "right"):
            results = [subprocess.run(
                [sys.executable, "-m", "qakeapi", *command, "--url", url], cwd=tmp_path,
                env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
                for command in (["queue", "status"], ["queue", "start", "--app",
                                                       "taskapp:app"])]
        expected = "refused the password"
    for result in results:
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert "wrong" not in result.stderr.replace("wrong-password", "")
