"""Redis decides leases and due times with the server's clock: clients whose clocks are a
minute off (ahead or behind) neither steal running tasks nor run delayed ones early."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from qakeapi.queued_tasks.backends._redis import RedisStorage
from qakeapi.types import TaskOutcome, TaskRecord, TaskStatus

from ._redis import redis_queue_url

pytestmark = pytest.mark.anyio
SKEW = 60.0


@pytest.fixture
async def stores() -> AsyncIterator[tuple[RedisStorage, RedisStorage, RedisStorage]]:
    """(honest, ahead by a minute, behind by a minute), all on one queue."""
    with redis_queue_url() as url:
        honest, ahead, behind = RedisStorage(url), RedisStorage(url), RedisStorage(url)
        ahead.clock = lambda: time.time() + SKEW
        behind.clock = lambda: time.time() - SKEW
        for store in (honest, ahead, behind):
            await store.connect()
        try:
            yield honest, ahead, behind
        finally:
            for store in (honest, ahead, behind):
                await store.close()


def task(client: RedisStorage, delay: float | None = None) -> TaskRecord:
    """A record as ``add_task`` builds it on that client: times from its own clock."""
    now = client.clock()
    return TaskRecord(id=os.urandom(8).hex(), name="mod:fn", created_at=now,
                      run_at=None if delay is None else now + delay, max_retries=3)


def pick(stores: tuple[RedisStorage, RedisStorage, RedisStorage], name: str) -> RedisStorage:
    return stores[("honest", "ahead", "behind").index(name)]


@pytest.mark.parametrize(("holder", "other"), [("honest", "ahead"), ("behind", "honest")])
async def test_a_lease_holds_whatever_the_clocks(
        stores: tuple[RedisStorage, RedisStorage, RedisStorage], holder: str,
        other: str) -> None:
    owner, rival = pick(stores, holder), pick(stores, other)
    record = task(owner)
    await owner.enqueue([record])
    [claimed] = await owner.claim(holder, 1, 30)
    assert claimed.lease_expires_at is not None
    assert claimed.lease_expires_at > time.time() + 20
    assert await rival.reclaim_expired() == []
    assert await rival.claim(other, 10, 30) == []
    got = await rival.get(record.id)
    assert got is not None and (got.status, got.worker_id) == (TaskStatus.RUNNING, holder)
    assert await owner.finish(holder, [TaskOutcome(record.id, TaskStatus.SUCCEEDED)]) == [
        record.id]


@pytest.mark.parametrize("producer", ["ahead", "behind"])
async def test_a_delayed_task_waits_its_delay_whatever_the_clocks(
        stores: tuple[RedisStorage, RedisStorage, RedisStorage], producer: str) -> None:
    client = pick(stores, producer)
    [stored] = await client.enqueue([task(client, delay=30)])
    assert stored.run_at is not None and 20 < stored.run_at - time.time() <= 31
    for worker in stores:
        assert await worker.claim("w", 10, 30) == []
        due = await worker.next_due_at()
        assert due is not None and 20 < due - worker.clock() <= 31


async def test_a_retry_delay_counts_from_the_server_clock(
        stores: tuple[RedisStorage, RedisStorage, RedisStorage]) -> None:
    honest, ahead, behind = stores
    record = task(honest)
    await honest.enqueue([record])
    await behind.claim("behind", 1, 30)
    await behind.finish("behind", [TaskOutcome(record.id, TaskStatus.PENDING,
                                               run_at=behind.clock() + 30)])
    assert await ahead.claim("ahead", 10, 30) == []
    got = await honest.get(record.id)
    assert got is not None and got.run_at is not None
    assert 20 < got.run_at - time.time() <= 31
