"""A stored row that can't be read fails only itself, on every backend (see
``qakeapi.queued_tasks.backends._rows``): claiming records it failed with the reason and
hands out the rest of the batch; ``get``/``list``/``stats`` keep working and show it."""

from __future__ import annotations

import os

import pytest

from qakeapi.queued_tasks.backends import QueueStorage
from qakeapi.types import TaskRecord, TaskStatus

from .._poison import Poison, store_poisoned

pytestmark = pytest.mark.anyio
T0 = 1_000_000.0


def rec(created_at: float, parents: tuple[str, ...] = ()) -> TaskRecord:
    return TaskRecord(id=os.urandom(8).hex(), name="mod:fn", args=[1], kwargs={"k": "v"},
                      created_at=created_at, parents=parents)


async def poisoned_queue(storage: QueueStorage, poison: Poison
                         ) -> tuple[TaskRecord, list[TaskRecord]]:
    """A queue of good tasks before and after one poisoned task, all due in one batch."""
    first = rec(T0)
    await storage.enqueue([first], now=T0)
    bad = rec(T0 + 1)
    await store_poisoned(storage, bad, poison.field, poison.raw, poison.value)
    last = rec(T0 + 2)
    await storage.enqueue([last], now=T0)
    return bad, [first, last]


def assert_failed_as_corrupt(record: TaskRecord | None, task_id: str) -> None:
    assert record is not None and record.id == task_id
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "CorruptTaskError"
    assert record.error.message.startswith(f"corrupt row: task {task_id}: ")


async def test_poison_row_fails_only_itself(storage: QueueStorage, poison: Poison) -> None:
    bad, good = await poisoned_queue(storage, poison)
    claimed = await storage.claim("w1", 10, 30, now=T0 + 10)
    assert sorted(r.id for r in claimed) == sorted(r.id for r in good)
    assert_failed_as_corrupt(await storage.get(bad.id), bad.id)
    assert await storage.claim("w1", 10, 30, now=T0 + 20) == []
    assert_failed_as_corrupt(await storage.get(bad.id), bad.id)


async def test_child_of_poison_row_is_cancelled(storage: QueueStorage, poison: Poison) -> None:
    bad, _ = await poisoned_queue(storage, poison)
    child = rec(T0 + 3, parents=(bad.id,))
    await storage.enqueue([child], now=T0)
    await storage.claim("w1", 10, 30, now=T0 + 10)
    got = await storage.get(child.id)
    assert got is not None and got.status is TaskStatus.CANCELLED
    assert got.cancel_reason == f"parent {bad.id} failed"


async def test_poison_row_can_be_inspected(storage: QueueStorage, poison: Poison) -> None:
    bad, good = await poisoned_queue(storage, poison)
    for now in (T0 + 5, T0 + 10):
        listed = {r.id: r for r in await storage.list()}
        assert set(listed) == {bad.id, *(r.id for r in good)}
        shown = await storage.get(bad.id)
        assert shown is not None and shown.error is not None
        assert shown.error.type == "CorruptTaskError"
        assert listed[bad.id].error == shown.error
        stats = await storage.stats(now=now)
        assert sum(stats.counts.values()) == 3
        await storage.claim("w1", 10, 30, now=now)
    stats = await storage.stats(now=T0 + 20)
    assert (stats.counts[TaskStatus.FAILED], stats.counts[TaskStatus.RUNNING]) == (1, 2)
    assert [r.id for r in await storage.list(TaskStatus.FAILED)] == [bad.id]
