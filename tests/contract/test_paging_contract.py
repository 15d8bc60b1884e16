"""Keyset paging of the task list, the same on every backend (``QueueStorage.page``):
each task exactly once, in order, under every filter, while tasks are added and change state;
bad cursors and limits refused with a clear error; counts and listings agree after every kind
of state change."""

from __future__ import annotations

import math
import os

import pytest

from qakeapi.constants import TASK_PAGE_MAX
from qakeapi.exceptions import InvalidCursor
from qakeapi.queued_tasks.backends import QueueStorage
from qakeapi.queued_tasks.backends._paging import Listing, Position
from qakeapi.types import TaskOutcome, TaskRecord, TaskStatus

from .._poison import Poison, store_poisoned

pytestmark = pytest.mark.anyio
T0 = 1_000_000.0
NAMES = ("mod:a", "mod:b", "mod:rare")


def rec(i: int, created_at: float, **fields: object) -> TaskRecord:
    name = NAMES[2] if i % 7 == 0 else NAMES[i % 2]
    return TaskRecord(id=f"{os.urandom(6).hex()}-{i:04d}", name=name, args=[i],
                      created_at=created_at, **fields)  # type: ignore[arg-type]


async def walk(storage: QueueStorage, limit: int, **filters: object) -> list[TaskRecord]:
    """Every page from the top, following ``older``; each page at most ``limit`` long."""
    out: list[TaskRecord] = []
    cursor = None
    for _ in range(10_000):
        page = await storage.page(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        assert len(page.records) <= limit
        out += page.records
        if page.older is None:
            return out
        cursor = page.older
    raise AssertionError("paging never ended")


async def mixed_queue(storage: QueueStorage, n: int = 60) -> list[TaskRecord]:
    """``n`` tasks, several sharing one ``created_at`` (ties), in every state."""
    records = [rec(i, T0 + i // 3) for i in range(n)]
    await storage.enqueue(records, now=T0)
    claimed = await storage.claim("w1", n // 2, 30, now=T0 + 100)
    outcomes = [TaskOutcome(r.id, TaskStatus.SUCCEEDED) for r in claimed[::3]]
    outcomes += [TaskOutcome(r.id, TaskStatus.FAILED) for r in claimed[1::6]]
    await storage.finish("w1", outcomes, now=T0 + 101)
    for r in records[-5:]:
        await storage.cancel(r.id, "not needed", now=T0 + 102)
    return records


def assert_listing_order(got: list[TaskRecord]) -> None:
    stamps = [r.created_at for r in got]
    assert stamps == sorted(stamps, reverse=True)


FILTERS = [{}, {"status": TaskStatus.PENDING}, {"status": TaskStatus.RUNNING},
           {"name": "mod:rare"}, {"name": "mod:a", "status": TaskStatus.SUCCEEDED},
           {"name": "mod:none"}]


@pytest.mark.parametrize("limit", [1, 4, 7, 100])
async def test_paging_returns_every_task_once_in_order(storage: QueueStorage,
                                                       limit: int) -> None:
    await mixed_queue(storage)
    everything = {r.id: r for r in await walk(storage, TASK_PAGE_MAX)}
    assert len(everything) == 60
    for filters in FILTERS:
        got = await walk(storage, limit, **filters)
        expected = [r for r in everything.values()
                    if r.status is filters.get("status", r.status)
                    and r.name == filters.get("name", r.name)]
        assert len(got) == len({r.id for r in got}), filters
        assert {r.id for r in got} == {r.id for r in expected}, filters
        assert_listing_order(got)
        if filters.get("name") == "mod:none":
            assert got == []


async def test_the_same_order_as_list(storage: QueueStorage) -> None:
    await mixed_queue(storage)
    assert [r.id for r in await walk(storage, 5)] == [r.id for r in await storage.list(
        limit=1000)]
    assert [r.id for r in await walk(storage, 5, status=TaskStatus.PENDING)] == [
        r.id for r in await storage.list(TaskStatus.PENDING, limit=1000)]


async def test_newer_cursors_walk_back_to_the_top(storage: QueueStorage) -> None:
    await mixed_queue(storage)
    for filters in FILTERS[:4]:
        forward: list[list[str]] = []
        cursor = None
        while True:
            page = await storage.page(limit=4, cursor=cursor, **filters)  # type: ignore[arg-type]
            forward.append([r.id for r in page.records])
            if page.older is None:
                break
            cursor = page.older
        assert (await storage.page(limit=4, **filters)).newer is None  # type: ignore[arg-type]
        back: list[str] = []
        cursor = page.newer
        while cursor is not None:
            newer = await storage.page(limit=4, cursor=cursor, **filters)  # type: ignore[arg-type]
            back = [r.id for r in newer.records] + back
            cursor = newer.newer
        assert back == [i for ids in forward[:-1] for i in ids], filters


@pytest.mark.parametrize("status", [None, TaskStatus.PENDING])
async def test_pages_stay_exact_while_tasks_arrive_and_change_state(
        storage: QueueStorage, status: TaskStatus | None) -> None:
    records = [rec(i, T0 + i // 2) for i in range(40)]
    await storage.enqueue(records, now=T0)
    seen: list[TaskRecord] = []
    stayed_pending = {r.id for r in records}
    cursor = None
    for step in range(100):
        page = await storage.page(status=status, limit=6, cursor=cursor)
        seen += page.records
        # between pages: newer tasks arrive, the oldest due ones are claimed and finish
        await storage.enqueue([rec(100 + step, T0 + 1000 + step)], now=T0)
        claimed = await storage.claim("w1", 3, 30, now=T0 + 2000)
        stayed_pending -= {r.id for r in claimed}
        await storage.finish("w1", [TaskOutcome(r.id, TaskStatus.SUCCEEDED) for r in claimed],
                             now=T0 + 2001)
        if page.older is None:
            break
        cursor = page.older
    ids = [r.id for r in seen]
    assert len(ids) == len(set(ids))  # nothing twice
    assert_listing_order(seen)
    if status is None:  # what was there when paging began: each exactly once
        assert set(ids) == {r.id for r in records}
    else:  # what stayed pending throughout: listed; nothing that was never pending
        assert stayed_pending <= set(ids) <= {r.id for r in records}
        assert len(stayed_pending) < len(records)


async def test_limit_is_checked(storage: QueueStorage) -> None:
    await storage.enqueue([rec(1, T0)], now=T0)
    for bad in (0, -1, TASK_PAGE_MAX + 1, 10**12):
        with pytest.raises(ValueError, match=f"limit must be between 1 and {TASK_PAGE_MAX}"):
            await storage.page(limit=bad)
    for wrong in (math.nan, 5.0, "5", True, None):
        with pytest.raises(TypeError, match="limit must be an int"):
            await storage.page(limit=wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown task status 'done'"):
        await storage.page(status="done")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a str"):
        await storage.page(name=5)  # type: ignore[arg-type]
    assert len((await storage.page(limit=TASK_PAGE_MAX)).records) == 1
    assert len((await storage.page(status="pending")).records) == 1  # type: ignore[arg-type]


async def test_bad_cursors_get_a_clear_error(storage: QueueStorage) -> None:
    await storage.enqueue([rec(i, T0 + i) for i in range(5)], now=T0)
    good = (await storage.page(limit=2)).older
    assert good is not None
    body, mac = good.split(".")
    tampered_body = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for garbage in ("", "x", "x.y", "....", "é.é", "a" * 5000, "%00.%00", good + "x"):
        with pytest.raises(InvalidCursor, match="start again from the first page"):
            await storage.page(limit=2, cursor=garbage)
    with pytest.raises(InvalidCursor, match="altered or cut"):
        await storage.page(limit=2, cursor=f"{tampered_body}.{mac}")
    kind = storage.url.split(":")[0].replace("rediss", "redis")
    other = "sqlite" if kind != "sqlite" else "redis"
    foreign = Listing(other, None, None, 2).encode(Position(T0 + 2, 3))
    with pytest.raises(InvalidCursor, match=f"belongs to a {other} queue's task list"):
        await storage.page(limit=2, cursor=foreign)
    with pytest.raises(InvalidCursor, match="other filters"):
        await storage.page(status=TaskStatus.PENDING, limit=2, cursor=good)
    with pytest.raises(InvalidCursor, match="other filters"):
        await storage.page(name="mod:a", limit=2, cursor=good)
    with pytest.raises(InvalidCursor, match="a string"):
        await storage.page(limit=2, cursor=5)  # type: ignore[arg-type]
    # a cursor holds a position, not the task: it stays good when that task is gone
    assert [r.id for r in (await storage.page(limit=2, cursor=good)).records] == [
        r.id for r in (await storage.list(limit=2, offset=2))]
    assert len(good) < 120


async def test_a_cursor_carries_no_task_data(storage: QueueStorage) -> None:
    secret = TaskRecord(id="plain-id-1", name="mod:secret_name", args=["hunter2"],
                        kwargs={"token": "s3cr3t"}, created_at=T0)
    await storage.enqueue([secret, rec(1, T0 - 1)], now=T0)
    page = await storage.page(name="mod:secret_name", limit=1)
    assert page.older is None
    page = await storage.page(limit=1)
    assert page.older is not None
    decoded = page.older.encode().decode()
    for text in ("hunter2", "s3cr3t", "secret_name"):
        assert text not in decoded
    import base64
    body = base64.urlsafe_b64decode(page.older.split(".")[0] + "==")
    for text in (b"hunter2", b"s3cr3t", b"secret_name"):
        assert text not in body


async def test_counts_and_listings_agree_after_every_change(storage: QueueStorage) -> None:
    parent = rec(1, T0)
    child = rec(2, T0 + 1, parents=(parent.id,))
    retrying = rec(3, T0 + 2, max_retries=2)
    lost = rec(4, T0 + 3, max_retries=1)
    gone = rec(5, T0 + 4, auto_remove=True)
    extra = [rec(6 + i, T0 + 5 + i) for i in range(6)]
    await storage.enqueue([parent, child, retrying, lost, gone, *extra], now=T0)
    await check_agreement(storage)
    claimed = {r.id for r in await storage.claim("w1", 5, 30, now=T0 + 10)}
    assert {parent.id, retrying.id, lost.id, gone.id} <= claimed
    await check_agreement(storage)
    await storage.finish("w1", [TaskOutcome(parent.id, TaskStatus.FAILED),
                                TaskOutcome(retrying.id, TaskStatus.PENDING, run_at=T0 + 11),
                                TaskOutcome(gone.id, TaskStatus.SUCCEEDED)], now=T0 + 10)
    await check_agreement(storage)  # child cancelled with its parent, gone auto-removed
    assert await storage.reclaim_expired(now=T0 + 100) != []
    await check_agreement(storage)
    await storage.requeue(parent.id, now=T0 + 101)  # the child comes back too
    await storage.cancel(extra[0].id, "no", now=T0 + 101)
    await check_agreement(storage)
    done = await storage.claim("w2", 20, 30, now=T0 + 200)
    await storage.finish("w2", [TaskOutcome(r.id, TaskStatus.SUCCEEDED) for r in done],
                         now=T0 + 201)
    await check_agreement(storage)
    assert await storage.purge({TaskStatus.SUCCEEDED}) > 0
    await check_agreement(storage)
    await storage.enqueue([rec(50, T0 + 300), rec(51, T0 + 301)], now=T0)
    await storage.delete_pending()
    await check_agreement(storage)


async def check_agreement(storage: QueueStorage) -> None:
    everything = await walk(storage, 3)
    counts = (await storage.stats(now=T0)).counts
    for status in TaskStatus:
        of_status = [r for r in everything if r.status is status]
        assert counts.get(status, 0) == len(of_status), status
        assert {r.id for r in await walk(storage, 2, status=status)} == {
            r.id for r in of_status}, status
        for name in NAMES:
            assert {r.id for r in await walk(storage, 2, status=status, name=name)} == {
                r.id for r in of_status if r.name == name}, (status, name)
    for name in NAMES:
        assert {r.id for r in await walk(storage, 2, name=name)} == {
            r.id for r in everything if r.name == name}


async def test_a_poisoned_row_is_listed_and_fails_nothing(storage: QueueStorage,
                                                          poison: Poison) -> None:
    good = [rec(1, T0), rec(2, T0 + 2)]
    await storage.enqueue(good[:1], now=T0)
    bad = rec(3, T0 + 1)
    await store_poisoned(storage, bad, poison.field, poison.raw, poison.value)
    await storage.enqueue(good[1:], now=T0)
    for limit in (1, 2, 10):
        listed = [r.id for r in await walk(storage, limit)]
        assert sorted(listed) == sorted([bad.id] + [r.id for r in good])
    await storage.claim("w1", 10, 30, now=T0 + 10)
    failed = await walk(storage, 1, status=TaskStatus.FAILED)
    assert [r.id for r in failed] == [bad.id]
    assert {r.id for r in await walk(storage, 1, status=TaskStatus.RUNNING)} == {
        r.id for r in good}
