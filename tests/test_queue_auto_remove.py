"""``auto_remove``: a task's record is deleted when it succeeds (per task, or as the default
of a registration), kept when it fails, and kept while other tasks depend on it — on every
backend; an SQLite queue of schema 2 is upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from qakeapi.exceptions import TaskNotFound
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.queued_tasks.backends._sqlite_schema import SCHEMA_VERSION
from qakeapi.types import TaskRecord, TaskStatus

from . import _queue_tasks as t
from ._sqlite_schemas import downgrade
from .test_queue import fast_settings, key, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio


async def gone(tasks: QueuedTasks, task_id: str) -> bool:
    with anyio.move_on_after(20):
        while await tasks.get(task_id) is not None:
            await anyio.sleep(0.05)
        return True
    return False


async def test_succeeded_tasks_are_removed_failed_ones_kept(queue_url: str  # noqa: F811
                                                            ) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        tasks.register(t.multiply, auto_remove=True)
        removed = tasks.add_task(t.add, 1, 2, auto_remove=True)
        by_default = await tasks.enqueue(t.multiply, 6, 7)
        overridden = tasks.add_task(t.multiply, 2, 2, auto_remove=False)
        failed = tasks.add_task(t.no_retry, key(), auto_remove=True)
        parent = tasks.add_task(t.add, 5, 5, auto_remove=True)
        child = tasks.add_task(t.add, 1, 1, parent=parent, auto_remove=True)
        assert await overridden.result(10) == 4
        assert (await failed.wait(10)).status is TaskStatus.FAILED
        for ref in (removed, by_default, child):
            assert await gone(tasks, ref.id), ref
        with pytest.raises(TaskNotFound):
            await removed.wait(1)
        kept = await parent.record()
        assert (kept.status, kept.auto_remove) == (TaskStatus.SUCCEEDED, True)
        assert {r.id for r in await tasks.list()} == {overridden.id, failed.id, parent.id}
        assert (await failed.record()).auto_remove is True


async def test_bad_auto_remove_is_refused_naming_it(queue_url: str) -> None:  # noqa: F811
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        for value in ("yes", 1, 0.0):
            with pytest.raises(TypeError, match="auto_remove"):
                tasks.add_task(t.add, 1, 2, auto_remove=value)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="auto_remove"):
                tasks.register(t.multiply, auto_remove=value)  # type: ignore[arg-type]
        await tasks.flush()
        assert await tasks.list() == []


async def test_a_schema_2_sqlite_queue_is_upgraded_and_keeps_its_tasks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    storage = open_storage(url)
    await storage.connect()
    old = TaskRecord(id="old-task", name="tests._queue_tasks:add", args=[1, 2], created_at=1.0)
    await storage.enqueue([old])
    await storage.close()
    downgrade(tmp_path / "queue.db", 2)
    async with QueuedTasks(settings=fast_settings(url)) as tasks:
        tasks.register(t.add)
        new = tasks.add_task(t.add, 2, 2, auto_remove=True)
        assert await gone(tasks, new.id)
        with anyio.fail_after(20):
            while not (record := await tasks.get("old-task")) or not record.is_terminal:
                await anyio.sleep(0.05)
        assert (record.status, record.result, record.auto_remove) == (
            TaskStatus.SUCCEEDED, 3, False)
    with sqlite3.connect(tmp_path / "queue.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
