"""SQLite keeps its counts by status in a table (updated per transaction, see
``_sqlite_counts``), so ``stats()`` reads a few rows on a queue of any size: they always equal
a count of the rows, through every change, the queue's own or one made past it, and a queue
of schema 3 or 4 has them right once it is upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from qakeapi.queued_tasks.backends import open_storage
from qakeapi.queued_tasks.backends._sqlite_schema import SCHEMA_VERSION
from qakeapi.types import TaskOutcome, TaskRecord, TaskStatus

from ._sqlite_schemas import downgrade

pytestmark = pytest.mark.anyio


def _counted(path: Path) -> dict[TaskStatus, int]:
    counts = dict.fromkeys(TaskStatus, 0)
    with sqlite3.connect(path) as conn:
        for status, n in conn.execute("SELECT status, count(*) FROM tasks GROUP BY status"):
            counts[TaskStatus(status)] = n
    return counts


def _record(i: int, **fields: object) -> TaskRecord:
    return TaskRecord(id=f"task-{i}", name="tests._queue_tasks:add", args=[i, 1],
                      created_at=1000.0 + i, **fields)  # type: ignore[arg-type]


async def test_counts_follow_every_change(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    storage = open_storage(f"sqlite:///{path}")
    await storage.connect()
    try:
        await storage.enqueue([_record(i) for i in range(10)], now=2000.0)
        await storage.enqueue([_record(10, parents=("task-0",))], now=2000.0)
        assert (await storage.stats(now=2000.0)).counts == _counted(path)
        claimed = await storage.claim("w1", 6, 30.0, now=2001.0)
        assert (await storage.stats(now=2001.0)).counts == _counted(path)
        ok, bad, retry = claimed[:3], claimed[3:5], claimed[5]
        await storage.finish("w1", [
            *(TaskOutcome(id=r.id, status=TaskStatus.SUCCEEDED, result=1) for r in ok),
            *(TaskOutcome(id=r.id, status=TaskStatus.FAILED) for r in bad),
            TaskOutcome(id=retry.id, status=TaskStatus.PENDING, run_at=2100.0)], now=2002.0)
        await storage.cancel("task-9", "no longer needed", now=2003.0)
        await storage.requeue(bad[0].id, now=2004.0)
        stats = await storage.stats(now=2004.0)
        assert stats.counts == _counted(path)
        assert stats.oldest_pending_at == bad[0].created_at  # requeued: due, the oldest
        assert await storage.purge({TaskStatus.SUCCEEDED}) > 0
        assert (await storage.stats(now=2005.0)).counts == _counted(path)
        await storage.delete_pending()
        assert (await storage.stats(now=2005.0)).counts == _counted(path)
        assert (await storage.stats(now=2005.0)).oldest_pending_at is None
    finally:
        await storage.close()


async def _old_queue(path: Path, version: int) -> None:
    """Five tasks, two of them claimed, in a queue of schema ``version``."""
    storage = open_storage(f"sqlite:///{path}")
    await storage.connect()
    await storage.enqueue([_record(i) for i in range(5)], now=2000.0)
    await storage.claim("w1", 2, 30.0, now=2001.0)
    await storage.close()
    downgrade(path, version)


async def _check_upgraded(path: Path) -> None:
    """The queue at ``path`` opens upgraded, counts right, and keeps them right."""
    storage = open_storage(f"sqlite:///{path}")
    await storage.connect()
    try:
        assert (await storage.stats(now=2002.0)).counts == _counted(path)
        claimed = await storage.claim("w2", 10, 30.0, now=2003.0)
        await storage.finish("w2", [TaskOutcome(id=r.id, status=TaskStatus.SUCCEEDED)
                                    for r in claimed], now=2004.0)
        assert (await storage.stats(now=2004.0)).counts == _counted(path)
        assert await storage.purge({TaskStatus.SUCCEEDED}) > 0
        assert (await storage.stats(now=2005.0)).counts == _counted(path)
    finally:
        await storage.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"tasks_named", "tasks_named_listed", "tasks_pending_oldest", "task_counts",
                "tasks_miscounted", "task_counts_delete"} <= names
        assert not names & {"tasks_due", "tasks_lease", "tasks_finished", "tasks_oldest",
                            "task_counts_insert", "task_counts_update"}


async def test_a_schema_4_queue_keeps_its_counts_through_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    await _old_queue(path, 4)
    with sqlite3.connect(path) as conn:  # changes the schema 4 triggers count
        conn.execute("UPDATE tasks SET status = 'failed' WHERE id = 'task-4'")
        conn.execute("DELETE FROM tasks WHERE id = 'task-3'")
        conn.execute("INSERT INTO tasks (id, name, status, due, created_at, args, kwargs) "
                     "VALUES ('task-9', 'tests._queue_tasks:add', 'pending', 0, 1009, '[]', "
                     "'{}')")
        assert dict(conn.execute("SELECT status, n FROM task_counts WHERE n != 0")) == {
            "pending": 2, "running": 2, "failed": 1}
    await _check_upgraded(path)


async def test_a_schema_3_queue_gets_its_counts_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    await _old_queue(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tasks SET status = 'succeeded' WHERE id = 'task-4'")
    storage = open_storage(f"sqlite:///{path}")
    await storage.connect()
    try:
        stats = await storage.stats(now=2002.0)
        assert stats.counts == _counted(path)
        assert (stats.counts[TaskStatus.PENDING], stats.counts[TaskStatus.RUNNING],
                stats.counts[TaskStatus.SUCCEEDED]) == (2, 2, 1)
        page = await storage.page(name="tests._queue_tasks:add", status=TaskStatus.PENDING)
        assert [r.id for r in page.records] == ["task-3", "task-2"]
    finally:
        await storage.close()
    await _check_upgraded(path)


async def test_counts_written_past_the_queue_stay_sane(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    storage = open_storage(f"sqlite:///{path}")
    await storage.connect()
    try:
        await storage.enqueue([_record(i) for i in range(4)], now=2000.0)
        with sqlite3.connect(path) as conn:  # a status changed by hand is still counted
            conn.execute("UPDATE tasks SET status = 'failed' WHERE id = 'task-0'")
        assert (await storage.stats(now=2000.0)).counts == _counted(path)
        with sqlite3.connect(path) as conn:  # and a damaged counts table reads, clamped
            conn.execute("UPDATE task_counts SET n = -7 WHERE status = 'pending'")
            conn.execute("INSERT INTO task_counts VALUES ('bogus', 2), ('running', 'many')")
        counts = (await storage.stats(now=2000.0)).counts
        assert (counts[TaskStatus.PENDING], counts[TaskStatus.FAILED],
                counts[TaskStatus.RUNNING]) == (0, 3, 0)
    finally:
        await storage.close()


async def test_tasks_changed_past_the_queue_are_counted_before_it_moves_them(
        tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    storage = open_storage(f"sqlite:///{path}")
    await storage.connect()
    try:
        await storage.enqueue([_record(i) for i in range(4)], now=2000.0)
        running = [r.id for r in await storage.claim("w1", 2, 30.0, now=2001.0)]
        with sqlite3.connect(path) as conn:  # an operator puts one back, adds and drops some
            conn.execute("UPDATE tasks SET status = 'pending', worker_id = NULL WHERE id = ?",
                         (running[0],))
            conn.execute("INSERT INTO tasks (id, name, status, due, created_at, args, kwargs) "
                         "VALUES ('by-hand', 'tests._queue_tasks:add', 'pending', 0, 999, "
                         "'[1, 1]', '{}')")
            conn.execute("DELETE FROM tasks WHERE id = ?", (running[1],))
        assert (await storage.stats(now=2002.0)).counts == _counted(path)
        claimed = await storage.claim("w1", 10, 30.0, now=2003.0)
        assert {running[0], "by-hand"} <= {r.id for r in claimed}
        assert (await storage.stats(now=2003.0)).counts == _counted(path)
        await storage.finish("w1", [TaskOutcome(id=r.id, status=TaskStatus.FAILED)
                                    for r in claimed], now=2004.0)
        stats = await storage.stats(now=2004.0)
        assert stats.counts == _counted(path)
        assert stats.counts[TaskStatus.FAILED] == 4
    finally:
        await storage.close()
