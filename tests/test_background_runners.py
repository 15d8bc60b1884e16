"""Tasks released together that wait (coroutines or threads) run side by side: the runners
wake one another while jobs are pending."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from time import time
from typing import Any

import anyio
import pytest

from qakeapi.core._background_jobs import NO_KWARGS, Job
from qakeapi.core._background_runners import RunnerPool
from qakeapi.core._background_settings import BackgroundSettings
from qakeapi.core._background_table import TaskTable
from qakeapi.types import TaskStatus

pytestmark = pytest.mark.anyio


def new_pool(max_concurrency: int) -> RunnerPool:
    ids = map("t{}".format, itertools.count(1))
    return RunnerPool(BackgroundSettings(max_concurrency=max_concurrency),
                      TaskTable(1000, 3600.0), None, ids.__next__)


def release(pool: RunnerPool, fn: Callable[..., Any], count: int, is_async: bool) -> list[Job]:
    """Record ``count`` jobs calling ``fn(i)`` and release them at once, as a response that
    held them does once it has been sent."""
    jobs = []
    for i in range(count):
        job = Job(pool.new_id(), "tests:fn", (i,), NO_KWARGS, 0, None, time(), fn, is_async,
                  ())
        pool.tasks[job.id] = job
        jobs.append(job)
    pool.live += count
    pool.held += count
    pool.start_held(jobs)
    return jobs


async def test_tasks_that_await_start_side_by_side() -> None:
    started: list[int] = []
    everyone = anyio.Event()

    async def meet(i: int) -> int:
        started.append(i)
        if len(started) == 3:
            everyone.set()
        await everyone.wait()  # only if all three run at once
        return i

    pool = new_pool(4)
    async with anyio.create_task_group() as tg:
        pool.start(tg)
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(10):  # a guard against a hang, not a timing assertion
            jobs = release(pool, meet, 3, True)
            await everyone.wait()
            await anyio.wait_all_tasks_blocked()
        assert sorted(started) == [0, 1, 2]
        assert [job.result for job in jobs] == [0, 1, 2]
        assert pool.wakes == 3
        await pool.drain(1.0)


async def test_thread_tasks_start_side_by_side() -> None:
    barrier = threading.Barrier(2, timeout=10)

    def meet(i: int) -> int:
        barrier.wait()  # raises BrokenBarrierError unless both threads run at once
        return i

    pool = new_pool(2)
    async with anyio.create_task_group() as tg:
        pool.start(tg)
        await anyio.wait_all_tasks_blocked()
        jobs = release(pool, meet, 2, False)
        with anyio.fail_after(20):
            while pool.live:
                await anyio.sleep(0.01)
        assert [job.status for job in jobs] == [TaskStatus.SUCCEEDED] * 2
        assert [job.result for job in jobs] == [0, 1]
        await pool.drain(1.0)
