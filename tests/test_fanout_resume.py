"""A fan-out left half-done by a process that died after its first step is finished by the
next ``reclaim_expired`` (any worker's heartbeat), on SQLite and Redis. The first step is
run exactly as ``cancel`` runs it; the process "dies" by running nothing more."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
import redis

from qakeapi.constants import FANOUT_CHUNK
from qakeapi.queued_tasks.backends import QueueStorage, open_storage
from qakeapi.queued_tasks.backends import _redis_scripts as lua
from qakeapi.queued_tasks.backends._redis import parse_redis_url
from qakeapi.queued_tasks.backends._sqlite import path_from_url
from qakeapi.queued_tasks.backends._sqlite_deps import add_fanout, fanout_step
from qakeapi.types import TaskRecord, TaskStatus

from ._redis import redis_queue_url

pytestmark = pytest.mark.anyio
CHILDREN = FANOUT_CHUNK * 3


def first_cancel_step_sqlite(url: str, parent: str) -> None:
    conn = sqlite3.connect(path_from_url(url), isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE tasks SET status = 'cancelled', cancel_reason = 'stop', "
                      "finished_at = ? WHERE id = ?", (time.time(), parent))
        add_fanout(conn, parent, TaskStatus.CANCELLED)
        assert fanout_step(conn, time.time()).more
        conn.execute("COMMIT")
    finally:
        conn.close()


def first_cancel_step_redis(url: str, parent: str) -> None:
    client_url, prefix, _ = parse_redis_url(url)
    client = redis.Redis.from_url(client_url, decode_responses=True)
    try:
        more, status = client.eval(lua.CANCEL, 0, prefix, "", parent, "stop")
        assert (more, status) == (1, "cancelled")
    finally:
        client.close()


async def counts(storage: QueueStorage) -> tuple[int, int]:
    stats = await storage.stats()
    return stats.counts[TaskStatus.PENDING], stats.counts[TaskStatus.CANCELLED]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_an_interrupted_cancel_fanout_is_finished_by_reclaim(
        backend: str, tmp_path: Path) -> None:
    sqlite_url = nullcontext(f"sqlite:///{tmp_path}/queue.db")
    with redis_queue_url() if backend == "redis" else sqlite_url as url:
        storage = open_storage(url)
        await storage.connect()
        try:
            parent = TaskRecord(id=os.urandom(8).hex(), name="mod:fn", created_at=time.time())
            children = [TaskRecord(id=os.urandom(8).hex(), name="mod:fn",
                                   created_at=time.time(), parents=(parent.id,))
                        for _ in range(CHILDREN)]
            await storage.enqueue([parent, *children])
            if backend == "sqlite":
                first_cancel_step_sqlite(url, parent.id)
            else:
                first_cancel_step_redis(url, parent.id)
            pending, cancelled = await counts(storage)
            assert pending > 0 and cancelled > 1
            assert await storage.claim("w", 10, 30) == []
            assert await storage.reclaim_expired() == []
            assert await counts(storage) == (0, CHILDREN + 1)
        finally:
            await storage.close()

