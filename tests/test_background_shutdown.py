"""Shutdown of the in-process manager: every task it drops is logged, started or not."""

from __future__ import annotations

import logging

import anyio
import pytest

from qakeapi import BackgroundTaskManager, TaskStatus

pytestmark = pytest.mark.anyio


async def test_pending_tasks_dropped_at_shutdown_are_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    manager.configure(max_concurrency=1)

    async def stuck() -> None:
        await anyio.sleep_forever()

    with caplog.at_level(logging.WARNING, logger="qakeapi.tasks"):
        async with manager.lifespan(grace=0.1):
            running = await manager.add_task(stuck)
            waiting = [await manager.add_task(stuck) for _ in range(3)]
    try:
        for task_id in (running, *waiting):
            assert manager.tasks[task_id].status is TaskStatus.CANCELLED
            logged = [r.getMessage() for r in caplog.records if task_id in r.getMessage()]
            assert len(logged) == 1 and "cancelled: shutdown" in logged[0], (task_id, logged)
        assert "not started" in str(manager.tasks[waiting[0]].cancel_reason)
    finally:
        BackgroundTaskManager.reset()
