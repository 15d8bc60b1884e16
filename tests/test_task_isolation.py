"""A task cannot take its runner down: a BaseException (sys.exit(), KeyboardInterrupt, ...)
fails only that task, and a timed-out thread keeps its slot until it really returns, so the
thread limit bounds real threads. Background tasks, the in-process worker, and real worker
processes on SQLite."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from qakeapi import BackgroundTaskManager, QakeAPI, TaskStatus
from qakeapi.core.background import add_background_task
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.testing import AsyncTestClient

from . import _queue_tasks as t
from ._processes import TASK_APP, read_runs, start_worker, stop, wait_until
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio


async def async_exit() -> None:
    sys.exit(3)


async def async_interrupt() -> None:
    raise KeyboardInterrupt


async def async_generator_exit() -> None:
    raise GeneratorExit


async def async_fatal() -> None:
    raise t.Fatal("fatal")


async def async_stray_cancel() -> None:
    raise asyncio.CancelledError("raised by the task, not by a cancel scope")


def sync_exit() -> None:
    sys.exit(4)


def sync_interrupt() -> None:
    raise KeyboardInterrupt


def sync_fatal() -> None:
    raise t.Fatal("fatal")


async def ok() -> str:
    return "ok"


@pytest.mark.parametrize(("fn", "error"), [
    (async_exit, "SystemExit"), (async_interrupt, "KeyboardInterrupt"),
    (async_generator_exit, "GeneratorExit"), (async_fatal, "Fatal"),
    (async_stray_cancel, "CancelledError"), (sync_exit, "SystemExit"),
    (sync_interrupt, "KeyboardInterrupt"), (sync_fatal, "Fatal"),
])
async def test_a_base_exception_fails_only_its_background_task(fn: Callable[[], Any],
                                                               error: str) -> None:
    BackgroundTaskManager.reset()
    app = QakeAPI()
    ids: list[str] = []

    @app.post("/bad")
    async def bad() -> dict[str, bool]:
        ids.append(await add_background_task(fn))
        ids.append(await add_background_task(fn, timeout=5, max_retries=1))
        return {"queued": True}

    @app.post("/good")
    async def good() -> dict[str, str]:
        return {"id": await add_background_task(ok)}

    async with AsyncTestClient(app) as client:
        assert (await client.post("/bad")).status_code == 200
        manager = BackgroundTaskManager()
        plain, retried = [await manager.wait(task_id, 10) for task_id in ids]
        for record in (plain, retried):
            assert record.status is TaskStatus.FAILED
            assert record.error is not None and record.error.type == error
        assert (plain.attempts, retried.attempts) == (1, 2)
        assert manager.running
        response = await client.post("/good")
        assert response.status_code == 200
        record = await manager.wait(response.json()["id"], 10)
        assert (record.status, record.result) == (TaskStatus.SUCCEEDED, "ok")
    BackgroundTaskManager.reset()


@pytest.mark.parametrize("fn", [t.exits, t.sync_exits])
async def test_sys_exit_fails_only_its_queued_task(queue_url: str,  # noqa: F811
                                                   fn: Callable[[int], None]) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        exited = tasks.add_task(fn, 3, max_retries=1)
        fatal = tasks.add_task(t.raises_fatal, max_retries=0)
        record = await exited.wait(10)
        assert (record.status, record.attempts) == (TaskStatus.FAILED, 2)
        assert record.error is not None and record.error.type == "SystemExit"
        record = await fatal.wait(10)
        assert record.status is TaskStatus.FAILED
        assert record.error is not None and record.error.type == "Fatal"
        assert await tasks.add_task(t.add, 1, 2).result(10) == 3


EXITING_APP = TASK_APP + '''

import sys


async def exits(code):
    _record(-1)
    sys.exit(code)
'''


def _in_taskapp(directory: Path, url: str, action: Callable[[Any, QueuedTasks], Any]) -> Any:
    sys.path.insert(0, str(directory))
    try:
        import taskapp  # type: ignore[import-not-found]

        async def main() -> Any:
            async with QueuedTasks(url, embedded_worker=False) as tasks:
                found = await action(taskapp, tasks)
                await tasks.flush()
                return found

        return anyio.run(main)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("taskapp", None)


def _live_worker_pids(directory: Path, url: str) -> set[int]:
    async def read(_app: Any, tasks: QueuedTasks) -> set[int]:
        return {worker.pid for worker in await tasks.workers()}

    pids: set[int] = _in_taskapp(directory, url, read)
    return pids


def _counts(directory: Path, url: str) -> dict[TaskStatus, int]:
    async def read(_app: Any, tasks: QueuedTasks) -> dict[TaskStatus, int]:
        return (await tasks.stats()).counts

    counts: dict[TaskStatus, int] = _in_taskapp(directory, url, read)
    return counts


@pytest.mark.slow
def test_sys_exit_in_a_task_leaves_every_worker_process_running(tmp_path: Path) -> None:
    (tmp_path / "taskapp.py").write_text(EXITING_APP)
    runs_file = tmp_path / "runs.txt"
    url = f"sqlite:///{tmp_path}/queue.db"
    supervisor = start_worker(tmp_path, url, concurrency=4, workers=2)
    try:
        wait_until(lambda: len(_live_worker_pids(tmp_path, url)) == 2, 60, "two workers")
        pids = _live_worker_pids(tmp_path, url)

        async def enqueue(app: Any, tasks: QueuedTasks) -> None:
            tasks.add_task(app.exits, 3, max_retries=1)
            for i in range(20):
                tasks.add_task(app.work, i)

        _in_taskapp(tmp_path, url, enqueue)
        wait_until(lambda: _counts(tmp_path, url)[TaskStatus.SUCCEEDED] == 20, 60, "20 runs")
        wait_until(lambda: _counts(tmp_path, url)[TaskStatus.FAILED] == 1, 60, "exit failed")
        assert supervisor.poll() is None
        for pid in pids:
            os.kill(pid, 0)  # still alive
        assert _live_worker_pids(tmp_path, url) == pids
        assert sorted(read_runs(runs_file)) == [-1, -1, *range(20)]
    finally:
        stop(supervisor)
    assert supervisor.returncode == 0


class ThreadCount:
    """The process's real threads, sampled while a scenario runs."""

    def __init__(self) -> None:
        self.baseline = self.peak = threading.active_count()

    async def watch(self) -> None:
        while True:
            self.peak = max(self.peak, threading.active_count())
            await anyio.sleep(0.005)


async def test_timed_out_background_threads_keep_their_slot(
        caplog: pytest.LogCaptureFixture) -> None:
    """Waves of sync tasks that time out while their threads sleep on: only the first wave
    gets threads; later waves time out waiting for a slot; the limit holds throughout."""
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    manager.configure(thread_limit=4)
    t.gauge = gauge = t.ThreadGauge()
    gate = t.thread_gates["background"] = threading.Event()
    threads = ThreadCount()
    try:
        with anyio.fail_after(60):
            async with manager.lifespan(grace=0.2), anyio.create_task_group() as tg:
                tg.start_soon(threads.watch)
                for _ in range(4):
                    wave = [await manager.add_task(t.sleep_in_thread, 60, "background",
                                                   timeout=0.1) for _ in range(4)]
                    for task_id in wave:
                        record = await manager.wait(task_id, 10)
                        assert record.status is TaskStatus.FAILED
                        assert record.error is not None and record.error.timed_out
                assert 1 <= gauge.peak <= 4
                assert threads.peak <= threads.baseline + 4
                gate.set()
                while gauge.now:
                    await anyio.sleep(0.01)
                after = await manager.add_task(t.sleep_in_thread, 0, wait=True)
                assert manager.tasks[after].status is TaskStatus.SUCCEEDED
                t.thread_gates["stuck"] = threading.Event()
                stuck = await manager.add_task(t.sleep_in_thread, 60, "stuck")
                while gauge.now < 1:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            # Shutdown did not wait for the stuck thread (it can't be killed).
            assert manager.tasks[stuck].status is TaskStatus.CANCELLED
            assert gauge.now == 1
            assert "with 1 task thread(s) still running" in caplog.text
    finally:
        for event in t.thread_gates.values():
            event.set()
        BackgroundTaskManager.reset()
    assert threads.peak <= threads.baseline + 4


async def test_timed_out_queued_threads_keep_their_worker_slot(queue_url: str  # noqa: F811
                                                               ) -> None:
    """A worker with 3 slots claims no new task while 3 timed-out threads still run."""
    t.gauge = gauge = t.ThreadGauge()
    threads = ThreadCount()
    settings = fast_settings(queue_url, max_workers=3)
    try:
        with anyio.fail_after(60):
            async with QueuedTasks(settings=settings) as tasks, anyio.create_task_group() as tg:
                threads.baseline = threading.active_count()
                tg.start_soon(threads.watch)
                refs = [tasks.add_task(t.sleep_in_thread, 0.6, timeout=0.2, max_retries=0)
                        for _ in range(9)]
                for ref in refs:
                    record = await ref.wait(30)
                    assert record.status is TaskStatus.FAILED
                    assert record.error is not None and record.error.timed_out
                assert 1 <= gauge.peak <= 3
                # Task code ran on at most 3 threads (the gauge). The process may hold more
                # for a moment: a slot is free as soon as its thread's call returns, and a
                # call taking it then starts a new thread when that one has not yet gone back
                # to anyio's pool (at most one such thread per slot), and the queue's own
                # storage thread (SQLite) may come on top. Never one thread per task (9).
                assert threads.peak <= threads.baseline + 2 * 3 + 1
                while gauge.now:
                    await anyio.sleep(0.01)
                t.thread_gates["queued-stuck"] = threading.Event()
                stuck = tasks.add_task(t.sleep_in_thread, 60, "queued-stuck")
                while gauge.now < 1:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            # The worker stopped without waiting for the stuck thread; it gave the task back.
            assert gauge.now == 1
        if not queue_url.startswith("memory"):
            async with QueuedTasks(settings=settings, embedded_worker=False) as tasks:
                record = await tasks.get(stuck.id)
                assert record is not None and record.status is TaskStatus.PENDING
    finally:
        for event in t.thread_gates.values():
            event.set()
    with anyio.fail_after(30):  # every thread returns
        while gauge.now:
            await anyio.sleep(0.01)


def raise_when_released(started: threading.Event, gate: threading.Event) -> None:
    started.set()
    gate.wait(30)
    raise ValueError("raised late, in an abandoned thread")


async def test_an_error_of_an_abandoned_thread_is_logged(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    started, gate = threading.Event(), threading.Event()
    try:
        async with manager.lifespan(grace=1.0):
            # The deadline must pass while the function runs: a thread that had not started
            # by then never runs it (nothing to log), which a loaded machine can cause.
            task_id = await manager.add_task(raise_when_released, started, gate, timeout=1.0)
            record = await manager.wait(task_id, 10)
            assert record.error is not None and record.error.timed_out
            assert started.is_set(), "the thread did not start within the 1 s deadline"
            gate.set()
            with anyio.fail_after(10):
                while "raised late, in an abandoned thread" not in caplog.text:
                    await anyio.sleep(0.01)
    finally:
        gate.set()
        BackgroundTaskManager.reset()
    assert "raise_when_released" in caplog.text
