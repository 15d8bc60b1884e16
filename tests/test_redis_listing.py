"""The Redis queue's listing indexes (``_redis_listing``): built once for a queue stored by
an older qakeapi, and never trusted blindly: an entry left stale by someone writing the
storage past the queue is skipped, not shown under the wrong filter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from qakeapi.queued_tasks.backends import open_storage
from qakeapi.queued_tasks.backends._redis import RedisStorage
from qakeapi.types import TaskRecord, TaskStatus

from ._redis import REDIS_URL, redis_queue_url

pytestmark = pytest.mark.anyio
T0 = 1_000_000.0


@pytest.fixture
def url() -> Iterator[str]:
    with redis_queue_url() as queue_url:
        yield queue_url


@pytest.fixture
async def storage(url: str) -> AsyncIterator[RedisStorage]:
    store = open_storage(url)
    assert isinstance(store, RedisStorage)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


def rec(i: int) -> TaskRecord:
    return TaskRecord(id=f"task-{i:03d}", name="mod:even" if i % 2 == 0 else "mod:odd",
                      args=[i], created_at=T0 + i)


async def test_an_old_queue_gets_its_indexes_on_connect(url: str,
                                                        storage: RedisStorage) -> None:
    await storage.enqueue([rec(i) for i in range(2_500)], now=T0)
    await storage.claim("w1", 10, 30, now=T0 + 1)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = storage.prefix
    for pattern in ("st:*", "nm:*", "ns:*"):  # what an older qakeapi never wrote
        for key in client.scan_iter(match=f"{prefix}:{pattern}", count=1000):
            client.delete(key)
    client.delete(f"{prefix}:layout")
    for i in range(2_500):
        client.hdel(f"{prefix}:t:task-{i:03d}", "nm")
    assert (await storage.page(status=TaskStatus.RUNNING)).records == []

    upgraded = open_storage(url)
    await upgraded.connect()
    try:
        running = await upgraded.page(status=TaskStatus.RUNNING)
        assert [r.id for r in running.records] == [f"task-{i:03d}" for i in range(9, -1, -1)]
        odd = await upgraded.page(name="mod:odd", status=TaskStatus.PENDING, limit=3)
        assert [r.id for r in odd.records] == ["task-2499", "task-2497", "task-2495"]
        assert client.get(f"{prefix}:layout") == "2"
    finally:
        await upgraded.close()


async def test_stale_index_entries_are_skipped(storage: RedisStorage) -> None:
    await storage.enqueue([rec(i) for i in range(10)], now=T0)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    for i in range(5, 10):  # written past the queue: the indexes still say pending
        client.hset(storage.key(f"t:task-{i:03d}"), "status", "succeeded")
    client.delete(storage.key("t:task-004"))  # and one hash is gone
    page = await storage.page(status=TaskStatus.PENDING, limit=2)
    assert [r.id for r in page.records] == ["task-003", "task-002"]
    assert page.older is not None
    rest = await storage.page(status=TaskStatus.PENDING, limit=2, cursor=page.older)
    assert [r.id for r in rest.records] == ["task-001", "task-000"]
    assert rest.older is None
    client.hset(storage.key("t:task-003"), "nm", "mod:other")
    page = await storage.page(name="mod:odd", limit=5)
    assert [r.id for r in page.records] == ["task-009", "task-007", "task-005", "task-001"]
