"""Background tasks share the queued tasks' option names and retry policy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from qakeapi import BackgroundTaskManager, TaskStatus
from qakeapi.core.background import add_background_task
from qakeapi.exceptions import NoRetry, Retry

pytestmark = pytest.mark.anyio

SLOW_BACKOFF = 30.0


@pytest.fixture
async def manager() -> AsyncIterator[BackgroundTaskManager]:
    BackgroundTaskManager.reset()
    instance = BackgroundTaskManager()
    instance.configure(retry_base_delay=SLOW_BACKOFF)
    async with instance.lifespan(grace=1.0):
        yield instance
    BackgroundTaskManager.reset()


class Flaky:
    """Raises ``errors`` one after another, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def test_a_failed_attempt_waits_a_backoff_before_the_retry(
        manager: BackgroundTaskManager) -> None:
    flaky = Flaky(ConnectionError("down"))
    before = time.time()
    task_id = await manager.add_task(flaky, max_retries=2)
    with anyio.fail_after(10):
        while flaky.calls < 1 or manager.tasks[task_id].run_at is None:
            await anyio.sleep(0.01)
    record = manager.tasks[task_id]
    assert (record.status, record.attempts, flaky.calls) == (TaskStatus.PENDING, 1, 1)
    assert record.error is not None and record.error.type == "ConnectionError"
    assert record.run_at is not None and record.run_at >= before + SLOW_BACKOFF * 0.75
    with anyio.fail_after(10):
        cancelled = await manager.cancel(task_id, "no need")
    assert (cancelled.status, cancelled.cancel_reason, flaky.calls) == (
        TaskStatus.CANCELLED, "no need", 1)


async def test_retry_with_a_delay_overrides_the_backoff(manager: BackgroundTaskManager) -> None:
    flaky = Flaky(Retry(delay=0), Retry(delay=0.01))
    task_id = await manager.add_task(flaky, max_retries=2)
    record = await manager.wait(task_id, timeout=10)
    assert (record.status, record.result, record.attempts) == (TaskStatus.SUCCEEDED, "done", 3)


async def test_no_retry_fails_at_once_whatever_retries_are_left(
        manager: BackgroundTaskManager) -> None:
    flaky = Flaky(NoRetry("bad input"))
    task_id = await manager.add_task(flaky, max_retries=5, wait=True)
    record = manager.tasks[task_id]
    assert (record.status, record.attempts, flaky.calls) == (TaskStatus.FAILED, 1, 1)
    assert record.error is not None and record.error.type == "NoRetry"


async def test_max_retries_is_the_option_name_and_retries_a_deprecated_alias(
        manager: BackgroundTaskManager) -> None:
    flaky = Flaky(Retry(delay=0))
    record = manager.tasks[await manager.add_task(flaky, max_retries=1, wait=True)]
    assert (record.status, record.max_retries, record.attempts) == (TaskStatus.SUCCEEDED, 1, 2)
    with pytest.warns(DeprecationWarning, match="max_retries"):
        task_id = await manager.add_task(Flaky(Retry(delay=0)), retries=1, wait=True)
    assert manager.tasks[task_id].status is TaskStatus.SUCCEEDED
    with pytest.warns(DeprecationWarning, match="max_retries"):
        task_id = await add_background_task(Flaky(), retries=3)
    assert manager.tasks[task_id].max_retries == 3
    for add in (manager.add_task, add_background_task):
        with pytest.raises(TypeError, match="max_retries or its deprecated alias retries"):
            await add(Flaky(), max_retries=1, retries=1)


async def test_a_shutdown_during_a_backoff_cancels_the_task() -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    manager.configure(retry_base_delay=SLOW_BACKOFF)
    flaky = Flaky(ConnectionError("down"))
    with anyio.fail_after(10):
        async with manager.lifespan(grace=0.1):
            task_id = await manager.add_task(flaky, max_retries=1)
            while manager.tasks[task_id].run_at is None:
                await anyio.sleep(0.01)
    record = manager.tasks[task_id]
    assert (record.status, flaky.calls) == (TaskStatus.CANCELLED, 1)
    BackgroundTaskManager.reset()
