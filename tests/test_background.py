"""The in-process background task manager, driven directly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from qakeapi import BackgroundTaskManager, EventBus, QakeAPI, TaskRecord, TaskStatus
from qakeapi.core.background import add_background_task
from qakeapi.exceptions import ManagerNotRunning, TaskNotFound, TaskWaitTimeout
from qakeapi.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


@pytest.fixture
async def manager() -> AsyncIterator[BackgroundTaskManager]:
    BackgroundTaskManager.reset()
    instance = BackgroundTaskManager()
    async with instance.lifespan(grace=1.0):
        yield instance
    BackgroundTaskManager.reset()


async def double(x: int) -> int:
    return x * 2


async def fail(message: str) -> None:
    raise ValueError(message)


def sync_sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


async def test_singleton_and_results(manager: BackgroundTaskManager) -> None:
    assert BackgroundTaskManager() is manager
    task_id = await manager.add_task(double, 21, wait=True)
    record = manager.tasks[task_id]
    assert (record.status, record.result, record.attempts) == (TaskStatus.SUCCEEDED, 42, 1)
    assert record.name.endswith(":double")
    assert record.started_at is not None and record.finished_at is not None


async def test_failure_is_recorded_logged_and_emitted(caplog: pytest.LogCaptureFixture) -> None:
    BackgroundTaskManager.reset()
    bus = EventBus()
    failed: list[Any] = []
    bus.add_listener("task:failed", failed.append)
    manager = BackgroundTaskManager()
    with caplog.at_level(logging.ERROR, logger="qakeapi.tasks"):
        async with manager.lifespan(events=bus):
            ok_id = await manager.add_task(double, 1)
            task_id = await manager.add_task(fail, "kaput", wait=True)
            await manager.wait(ok_id, 5)
    record = manager.tasks[task_id]
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "ValueError"
    assert "kaput" in record.error.traceback
    assert manager.tasks[ok_id].status is TaskStatus.SUCCEEDED
    assert [r.id for r in failed] == [task_id]
    logged = [r for r in caplog.records if task_id in r.getMessage()]
    assert logged and "kaput" in (logged[0].exc_text or "")
    BackgroundTaskManager.reset()


async def test_wrong_arity_fails_the_task_not_the_caller(manager: BackgroundTaskManager) -> None:
    task_id = await manager.add_task(double, 1, 2, 3, wait=True)
    record = manager.tasks[task_id]
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "TypeError"


async def test_bad_input(manager: BackgroundTaskManager) -> None:
    with pytest.raises(TypeError, match="must be callable"):
        await manager.add_task("not a function")  # type: ignore[arg-type]
    with pytest.raises(TaskNotFound) as info:
        manager.tasks["missing"]
    assert isinstance(info.value, KeyError)
    with pytest.raises(TaskNotFound):
        await manager.wait("missing")
    assert manager.get("missing") is None
    with pytest.raises(ValueError):
        await manager.add_task(double, 1, timeout=-1)


async def test_reserved_names_go_through_task_kwargs(manager: BackgroundTaskManager) -> None:
    async def takes_reserved(timeout: int, wait: str) -> tuple[int, str]:
        return timeout, wait

    task_id = await manager.add_task(takes_reserved, task_kwargs={"timeout": 5, "wait": "w"},
                                     wait=True)
    assert manager.tasks[task_id].result == (5, "w")


async def test_sync_task_runs_in_a_thread_without_blocking(
        manager: BackgroundTaskManager) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def record_thread() -> None:
        threads.append(threading.get_ident())
        time.sleep(0.3)

    task_id = await manager.add_task(record_thread)
    ticks = 0
    while manager.tasks[task_id].status is not TaskStatus.SUCCEEDED:
        ticks += 1
        await anyio.sleep(0.01)
    assert threads and threads[0] != loop_thread
    assert ticks > 3  # the loop kept running while the thread slept


@pytest.mark.parametrize("fn", ["async", "sync"])
async def test_cancel_running_task(manager: BackgroundTaskManager, fn: str) -> None:
    started = anyio.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    def blocking() -> None:
        started_thread.set()
        time.sleep(1.0)

    started_thread = threading.Event()
    task_id = await manager.add_task(forever if fn == "async" else blocking)
    if fn == "async":
        await started.wait()
    else:
        await anyio.to_thread.run_sync(started_thread.wait, 5)
    record = await manager.cancel(task_id, "user asked")
    assert record.status is TaskStatus.CANCELLED
    assert record.cancel_reason == "user asked"
    again = await manager.add_task(double, 2, wait=True)
    assert manager.tasks[again].result == 4


@pytest.mark.parametrize("fn", ["async", "sync"])
async def test_timeout(manager: BackgroundTaskManager, fn: str) -> None:
    async def slow() -> None:
        await anyio.sleep(10)

    task_id = await manager.add_task(slow if fn == "async" else sync_sleep,
                                     *(() if fn == "async" else (1.0,)), timeout=0.1, wait=True)
    record = manager.tasks[task_id]
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.timed_out


async def test_retries(manager: BackgroundTaskManager) -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("again")
        return "done"

    task_id = await manager.add_task(flaky, max_retries=2, wait=True)
    record = manager.tasks[task_id]
    assert (record.status, record.result, record.attempts) == (TaskStatus.SUCCEEDED, "done", 3)


async def test_cancel_pending_and_wait_timeout(manager: BackgroundTaskManager) -> None:
    gate = anyio.Event()

    async def blocked() -> None:
        await gate.wait()

    task_id = await manager.add_task(blocked)
    with pytest.raises(TaskWaitTimeout):
        await manager.wait(task_id, timeout=0.05)
    gate.set()
    assert (await manager.wait(task_id, 5)).status is TaskStatus.SUCCEEDED


async def test_outside_a_request_add_background_task_starts_now(
        manager: BackgroundTaskManager) -> None:
    task_id = await add_background_task(double, 5)
    assert (await manager.wait(task_id, 5)).result == 10


async def test_not_running_is_a_clear_error() -> None:
    BackgroundTaskManager.reset()
    with pytest.raises(ManagerNotRunning, match="not running"):
        await BackgroundTaskManager().add_task(double, 1)


async def test_shutdown_waits_for_grace_then_cancels() -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    finished: list[str] = []

    async def quick() -> None:
        await anyio.sleep(0.05)
        finished.append("quick")

    async def stuck() -> None:
        await anyio.sleep_forever()

    def stuck_thread() -> None:
        time.sleep(0.5)

    async with manager.lifespan(grace=0.3):
        quick_id = await manager.add_task(quick)
        stuck_id = await manager.add_task(stuck)
        thread_id = await manager.add_task(stuck_thread)
    assert finished == ["quick"]
    assert manager.tasks[quick_id].status is TaskStatus.SUCCEEDED
    for task_id in (stuck_id, thread_id):
        record = manager.tasks[task_id]
        assert record.status is TaskStatus.CANCELLED
        assert record.cancel_reason is not None and "shutdown" in record.cancel_reason
    assert manager.counts()[TaskStatus.RUNNING] == 0
    assert manager.counts()[TaskStatus.PENDING] == 0
    with pytest.raises(ManagerNotRunning):
        await manager.add_task(quick)
    BackgroundTaskManager.reset()


async def noop() -> None:
    return None


async def test_retention_is_bounded_and_never_drops_active_tasks() -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    manager.configure(retain_finished=1000)
    gate = anyio.Event()

    async def held() -> None:
        await gate.wait()

    async with manager.lifespan():
        held_id = await manager.add_task(held)
        for _ in range(200_000):
            await manager.add_task(noop)
        while manager.counts()[TaskStatus.PENDING]:
            await anyio.sleep(0.01)
        assert len(manager.tasks) <= 1000 + 1
        assert manager.tasks[held_id].status is TaskStatus.RUNNING
        gate.set()
        await manager.wait(held_id, 5)
    assert len(manager.tasks) <= 1000
    BackgroundTaskManager.reset()


async def test_age_retention() -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    manager.configure(retain_seconds=0.0)
    async with manager.lifespan():
        first = await manager.add_task(noop, wait=True)
        await anyio.sleep(1.1)
        await manager.add_task(noop, wait=True)
    assert first not in manager.tasks
    BackgroundTaskManager.reset()


async def test_configure_rejects_bad_values() -> None:
    BackgroundTaskManager.reset()
    with pytest.raises(ValueError):
        BackgroundTaskManager().configure(max_concurrency=0)
    with pytest.raises(TypeError):
        BackgroundTaskManager().configure(nonsense=1)
    BackgroundTaskManager.reset()


async def test_records_are_built_with_the_right_fields(manager: BackgroundTaskManager) -> None:
    task_id = await manager.add_task(double, 4, timeout=5, max_retries=1, wait=True)
    record = manager.tasks[task_id]
    assert (record.args, record.kwargs, record.max_retries, record.timeout, record.priority,
            record.status, record.result, record.error) == (
        (4,), {}, 1, 5, 0, TaskStatus.SUCCEEDED, 8, None)
    assert record.created_at <= record.started_at <= record.finished_at  # type: ignore[operator]
    assert (record.parents, record.context, record.logs, record.run_at, record.worker_id) == (
        (), {}, (), None, None)
    assert isinstance(record, TaskRecord) and record.to_dict()["status"] == "succeeded"


async def test_slow_tasks_run_side_by_side(manager: BackgroundTaskManager) -> None:
    """Idle runners wake in a chain: a burst of tasks that all wait is all running at once."""
    gate = anyio.Event()
    started: list[int] = []

    async def waits(n: int) -> None:
        started.append(n)
        await gate.wait()

    ids = [await manager.add_task(waits, n) for n in range(50)]
    with anyio.fail_after(5):
        while len(started) < 50:
            await anyio.sleep(0.001)
    assert manager.counts()[TaskStatus.RUNNING] == 50
    gate.set()
    for task_id in ids:
        assert (await manager.wait(task_id, 5)).status is TaskStatus.SUCCEEDED


def request_app(log: list[str]) -> QakeAPI:
    app = QakeAPI()

    async def record(name: str) -> None:
        log.append(name)

    @app.on("task:*")
    async def seen(event: str, task: TaskRecord) -> None:
        log.append(f"{event} {task.args[0] if task.args else ''}")

    @app.post("/cancel-held")
    async def cancel_held() -> dict[str, str]:
        kept = await add_background_task(record, "kept")
        dropped = await add_background_task(record, "dropped")
        await BackgroundTaskManager().cancel(dropped, "changed my mind")
        return {"kept": kept, "dropped": dropped}

    return app


async def test_held_tasks_emit_created_and_a_cancelled_held_task_never_runs() -> None:
    BackgroundTaskManager.reset()
    log: list[str] = []
    async with AsyncTestClient(request_app(log)) as client:
        ids = (await client.post("/cancel-held")).json()
        manager = BackgroundTaskManager()
        kept = await manager.wait(ids["kept"], 5)
        dropped = manager.tasks[ids["dropped"]]
    assert kept.status is TaskStatus.SUCCEEDED
    assert dropped.status is TaskStatus.CANCELLED
    assert dropped.cancel_reason == "changed my mind"
    assert "dropped" not in log and "kept" in log
    assert "task:created kept" in log and "task:created dropped" in log
    assert "task:cancelled dropped" in log and "task:succeeded kept" in log
    BackgroundTaskManager.reset()


async def test_a_full_queue_makes_the_handler_wait() -> None:
    """Backpressure reaches requests: with the queue full, a handler adding a task waits for
    room (the response with it), and nothing is lost."""
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    manager.configure(max_concurrency=1, max_pending=2)
    gate = anyio.Event()
    done: list[int] = []

    async def blocker() -> None:
        await gate.wait()

    async def work(n: int) -> None:
        done.append(n)

    app = QakeAPI()

    @app.post("/work/{n}")
    async def add_work(n: int) -> dict[str, str]:
        return {"id": await add_background_task(work, n)}

    answered: list[int] = []
    async with AsyncTestClient(app) as client:
        await manager.add_task(blocker)
        for n in (1, 2):
            assert (await client.post(f"/work/{n}")).status_code == 200
        async with anyio.create_task_group() as tg:
            async def third() -> None:
                await client.post("/work/3")
                answered.append(3)

            tg.start_soon(third)
            await anyio.sleep(0.2)
            assert answered == [] and manager.queued == 2
            gate.set()
        with anyio.fail_after(5):
            while len(done) < 3:
                await anyio.sleep(0.01)
    assert answered == [3] and sorted(done) == [1, 2, 3]
    BackgroundTaskManager.reset()
