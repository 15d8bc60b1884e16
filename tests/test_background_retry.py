"""Background tasks share the queued tasks' option names and retry policy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from qakeapi import BackgroundTaskManager, QakeAPI, TaskStatus
from qakeapi.core.background import add_background_task
from qakeapi.exceptions import NoRetry, Retry
from qakeapi.testing import AsyncTestClient

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


@pytest.fixture
async def quick_retries() -> AsyncIterator[BackgroundTaskManager]:
    BackgroundTaskManager.reset()
    instance = BackgroundTaskManager()
    instance.configure(retry_base_delay=0.01, retry_max_delay=0.05)
    async with instance.lifespan(grace=1.0):
        yield instance
    BackgroundTaskManager.reset()


class AuthError(Exception):
    pass


async def test_no_retry_on_fails_at_once_after_real_retries_of_other_errors(
        quick_retries: BackgroundTaskManager) -> None:
    """ConnectionErrors are retried (backoff and all); the AuthError named in no_retry_on
    then fails the task at once, with retries left."""
    flaky = Flaky(ConnectionError("down"), ConnectionError("still down"), AuthError("bad key"))
    task_id = await quick_retries.add_task(flaky, max_retries=5, no_retry_on=(AuthError,))
    record = await quick_retries.wait(task_id, timeout=10)
    assert (record.status, record.attempts, flaky.calls) == (TaskStatus.FAILED, 3, 3)
    assert record.error is not None and record.error.type == "AuthError"


async def test_no_retry_on_matches_subclasses_and_takes_one_class(
        quick_retries: BackgroundTaskManager) -> None:
    flaky = Flaky(ConnectionError("down"))
    record = quick_retries.tasks[await quick_retries.add_task(
        flaky, max_retries=3, no_retry_on=OSError, wait=True)]
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 1)
    other = Flaky(ConnectionError("down"))
    record = quick_retries.tasks[await quick_retries.add_task(
        other, max_retries=3, no_retry_on=[AuthError], wait=True)]
    assert (record.status, record.attempts, record.result) == (TaskStatus.SUCCEEDED, 2, "done")


async def test_add_background_task_honours_no_retry_on(
        quick_retries: BackgroundTaskManager) -> None:
    app = QakeAPI()
    flaky = Flaky(ConnectionError("down"), AuthError("bad key"))
    retried = Flaky(ConnectionError("down"), ConnectionError("down"))

    @app.post("/sync")
    async def sync() -> dict[str, str]:
        first = await add_background_task(flaky, max_retries=4, no_retry_on=(AuthError,))
        second = await add_background_task(retried, max_retries=4, no_retry_on=(AuthError,))
        return {"first": first, "second": second}

    async with AsyncTestClient(app) as client:
        ids = (await client.post("/sync")).json()
        first = await quick_retries.wait(ids["first"], timeout=10)
        second = await quick_retries.wait(ids["second"], timeout=10)
    assert (first.status, first.attempts) == (TaskStatus.FAILED, 2)
    assert (second.status, second.attempts) == (TaskStatus.SUCCEEDED, 3)
    outside = Flaky(AuthError("bad key"))
    record = await quick_retries.wait(
        await add_background_task(outside, max_retries=2, no_retry_on=(AuthError,)), 10)
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 1)


@pytest.mark.parametrize("bad", ["AuthError", 3, (AuthError, "x"), (int,), [AuthError()],
                                 (AuthError, None)])
async def test_bad_no_retry_on_is_refused_before_anything_is_recorded(
        quick_retries: BackgroundTaskManager, bad: object) -> None:
    for add in (quick_retries.add_task, add_background_task):
        with pytest.raises(TypeError, match="no_retry_on"):
            await add(Flaky(), max_retries=1, no_retry_on=bad)
    assert len(quick_retries.tasks) == 0 and quick_retries.running
