"""The one contract every queue backend passes (see QueueStorage's docstrings)."""

from __future__ import annotations

import os

import anyio
import pytest

from qakeapi.constants import FANOUT_CHUNK
from qakeapi.exceptions import MissingParentError, TaskNotFound
from qakeapi.queued_tasks.backends import QueueStorage
from qakeapi.types import TaskErrorInfo, TaskOutcome, TaskRecord, TaskStatus, WorkerInfo

pytestmark = pytest.mark.anyio
T0 = 1_000_000.0


def rec(name: str = "mod:fn", *, parents: tuple[str, ...] = (), priority: int = 0,
        run_at: float | None = None, max_retries: int = 0, unique_key: str | None = None,
        created_at: float = T0) -> TaskRecord:
    return TaskRecord(id=os.urandom(8).hex(), name=name, args=[1], kwargs={"k": "v"},
                      priority=priority, run_at=run_at, max_retries=max_retries,
                      parents=parents, unique_key=unique_key, created_at=created_at)


async def claim_ids(storage: QueueStorage, limit: int = 10, now: float = T0,
                    worker: str = "w1") -> list[str]:
    return [r.id for r in await storage.claim(worker, limit, 30, now=now)]


async def test_enqueue_get_roundtrip(storage: QueueStorage) -> None:
    record = rec()
    [stored] = await storage.enqueue([record], now=T0)
    assert stored.id == record.id
    got = await storage.get(record.id)
    assert got is not None
    assert (got.name, got.args, got.kwargs, got.status) == (
        "mod:fn", [1], {"k": "v"}, TaskStatus.PENDING)
    assert await storage.get("nope") is None


async def test_enqueue_keeps_the_initial_context(storage: QueueStorage) -> None:
    record = rec()
    record.context = {"tenant": {"id": 7}, "tags": ["a"]}
    await storage.enqueue([record], now=T0)
    got = await storage.get(record.id)
    assert got is not None and got.context == {"tenant": {"id": 7}, "tags": ["a"]}
    [claimed] = await storage.claim("w1", 1, 30, now=T0)
    assert claimed.context == {"tenant": {"id": 7}, "tags": ["a"]}


async def test_missing_parent_stores_nothing(storage: QueueStorage) -> None:
    first = rec()
    orphan = rec(parents=("no-such-task",))
    with pytest.raises(MissingParentError, match="no-such-task"):
        await storage.enqueue([first, orphan], now=T0)
    assert await storage.get(first.id) is None


async def test_parent_in_same_batch(storage: QueueStorage) -> None:
    parent = rec()
    child = rec(parents=(parent.id,))
    await storage.enqueue([parent, child], now=T0)
    assert await claim_ids(storage) == [parent.id]


async def test_unique_key_returns_existing_while_active(storage: QueueStorage) -> None:
    first = rec(unique_key="k1")
    [a] = await storage.enqueue([first], now=T0)
    [b] = await storage.enqueue([rec(unique_key="k1")], now=T0)
    assert b.id == a.id
    await storage.claim("w1", 1, 30, now=T0)
    await storage.finish("w1", [TaskOutcome(first.id, TaskStatus.SUCCEEDED)], now=T0)
    [c] = await storage.enqueue([rec(unique_key="k1")], now=T0)
    assert c.id != a.id


async def test_claim_order_priority_then_due_then_fifo(storage: QueueStorage) -> None:
    low = rec(priority=0, created_at=T0)
    high = rec(priority=5, created_at=T0 + 1)
    low2 = rec(priority=0, created_at=T0)
    await storage.enqueue([low, high, low2], now=T0)
    assert await claim_ids(storage, now=T0 + 2) == [high.id, low.id, low2.id]


async def test_claim_respects_limit_and_run_at(storage: QueueStorage) -> None:
    later = rec(run_at=T0 + 100)
    now_tasks = [rec() for _ in range(3)]
    await storage.enqueue([later, *now_tasks], now=T0)
    assert len(await claim_ids(storage, limit=2)) == 2
    assert await storage.next_due_at(now=T0) == T0
    assert len(await claim_ids(storage, limit=5)) == 1
    assert await storage.next_due_at(now=T0) == T0 + 100
    assert await claim_ids(storage, now=T0 + 99) == []
    assert await claim_ids(storage, now=T0 + 100) == [later.id]
    assert await storage.next_due_at(now=T0 + 100) is None


async def test_claim_marks_running_with_lease(storage: QueueStorage) -> None:
    record = rec()
    await storage.enqueue([record], now=T0)
    [claimed] = await storage.claim("w1", 1, 30, now=T0 + 1)
    assert claimed.status is TaskStatus.RUNNING
    assert (claimed.attempts, claimed.worker_id) == (1, "w1")
    assert claimed.started_at == T0 + 1
    assert claimed.lease_expires_at == T0 + 31


async def test_concurrent_claims_never_share_a_task(storage: QueueStorage) -> None:
    await storage.enqueue([rec() for _ in range(60)], now=T0)
    results: list[list[str]] = []

    async def grab(worker: str) -> None:
        for _ in range(10):
            results.append(await claim_ids(storage, limit=3, worker=worker))

    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(grab, f"w{n}")
    ids = [i for batch in results for i in batch]
    assert len(ids) == 60
    assert len(set(ids)) == 60


async def test_renew_reports_lost_and_cancel_requested(storage: QueueStorage) -> None:
    a, b = rec(), rec()
    await storage.enqueue([a, b], now=T0)
    await storage.claim("w1", 2, 30, now=T0)
    await storage.cancel(b.id, "stop it", now=T0)
    result = await storage.renew("w1", [a.id, b.id, "unknown"], 30, now=T0 + 10)
    assert result.lost == {"unknown"}
    assert result.cancel_requested == {b.id}
    assert (await storage.get(a.id)).lease_expires_at == T0 + 40  # type: ignore[union-attr]
    other = await storage.renew("w2", [a.id], 30, now=T0 + 10)
    assert other.lost == {a.id}


async def test_finish_success_stores_result_and_releases_children(storage: QueueStorage) -> None:
    parent = rec()
    child = rec(parents=(parent.id,))
    await storage.enqueue([parent, child], now=T0)
    await storage.claim("w1", 5, 30, now=T0)
    accepted = await storage.finish(
        "w1", [TaskOutcome(parent.id, TaskStatus.SUCCEEDED, result={"ok": True},
                           context={"progress": 100}, logs=["done"])], now=T0 + 1)
    assert accepted == [parent.id]
    got = await storage.get(parent.id)
    assert got is not None
    assert (got.status, got.result, got.context, list(got.logs), got.finished_at) == (
        TaskStatus.SUCCEEDED, {"ok": True}, {"progress": 100}, ["done"], T0 + 1)
    assert await claim_ids(storage, now=T0 + 1) == [child.id]


async def test_auto_remove_deletes_a_task_that_succeeded(storage: QueueStorage) -> None:
    gone, failing, kept = rec(), rec(), rec()
    gone.auto_remove = failing.auto_remove = True
    await storage.enqueue([gone, failing, kept], now=T0)
    assert (await storage.get(gone.id)).auto_remove is True  # type: ignore[union-attr]
    assert len(await storage.claim("w1", 5, 30, now=T0)) == 3
    accepted = await storage.finish("w1", [
        TaskOutcome(gone.id, TaskStatus.SUCCEEDED, result=1),
        TaskOutcome(failing.id, TaskStatus.FAILED, error=TaskErrorInfo("E", "boom")),
        TaskOutcome(kept.id, TaskStatus.SUCCEEDED, result=2)], now=T0 + 1)
    assert sorted(accepted) == sorted([gone.id, failing.id, kept.id])
    assert await storage.get(gone.id) is None
    assert (await storage.get(failing.id)).status is TaskStatus.FAILED  # type: ignore[union-attr]
    assert (await storage.get(kept.id)).auto_remove is False  # type: ignore[union-attr]
    assert {r.id for r in await storage.list()} == {failing.id, kept.id}
    counts = (await storage.stats()).counts
    assert (counts[TaskStatus.SUCCEEDED], counts[TaskStatus.FAILED]) == (1, 1)
    with pytest.raises(MissingParentError, match=gone.id):
        await storage.enqueue([rec(parents=(gone.id,))], now=T0 + 2)


async def test_auto_remove_keeps_a_parent_and_releases_its_children(storage: QueueStorage
                                                                    ) -> None:
    parent = rec()
    parent.auto_remove = True
    child = rec(parents=(parent.id,))
    await storage.enqueue([parent, child], now=T0)
    await storage.claim("w1", 5, 30, now=T0)
    await storage.finish("w1", [TaskOutcome(parent.id, TaskStatus.SUCCEEDED)], now=T0 + 1)
    assert (await storage.get(parent.id)).status is TaskStatus.SUCCEEDED  # type: ignore[union-attr]
    assert await claim_ids(storage, now=T0 + 1) == [child.id]


async def test_multi_parent_child_waits_for_all(storage: QueueStorage) -> None:
    p1, p2 = rec(), rec()
    child = rec(parents=(p1.id, p2.id))
    await storage.enqueue([p1, p2, child], now=T0)
    await storage.claim("w1", 5, 30, now=T0)
    await storage.finish("w1", [TaskOutcome(p1.id, TaskStatus.SUCCEEDED)], now=T0)
    assert await claim_ids(storage) == []
    await storage.finish("w1", [TaskOutcome(p2.id, TaskStatus.SUCCEEDED)], now=T0)
    assert await claim_ids(storage) == [child.id]


async def test_failure_cancels_descendants_transitively(storage: QueueStorage) -> None:
    root = rec()
    child = rec(parents=(root.id,))
    grandchild = rec(parents=(child.id,))
    unrelated = rec()
    await storage.enqueue([root, child, grandchild, unrelated], now=T0)
    await storage.claim("w1", 1, 30, now=T0)
    error = TaskErrorInfo("ValueError", "bad")
    await storage.finish("w1", [TaskOutcome(root.id, TaskStatus.FAILED, error=error)], now=T0)
    failed = await storage.get(root.id)
    assert failed is not None and failed.error == error
    for task_id in (child.id, grandchild.id):
        got = await storage.get(task_id)
        assert got is not None and got.status is TaskStatus.CANCELLED
        assert got.cancel_reason is not None and root.id in got.cancel_reason
    assert (await storage.get(unrelated.id)).status is TaskStatus.PENDING  # type: ignore[union-attr]


async def test_enqueue_under_failed_parent_is_cancelled(storage: QueueStorage) -> None:
    parent = rec()
    await storage.enqueue([parent], now=T0)
    await storage.cancel(parent.id, "no", now=T0)
    [child] = await storage.enqueue([rec(parents=(parent.id,))], now=T0)
    assert child.status is TaskStatus.CANCELLED
    assert child.cancel_reason is not None and parent.id in child.cancel_reason


async def test_retry_outcome_goes_back_to_pending(storage: QueueStorage) -> None:
    record = rec(max_retries=2)
    await storage.enqueue([record], now=T0)
    await storage.claim("w1", 1, 30, now=T0)
    error = TaskErrorInfo("RuntimeError", "flaky")
    await storage.finish("w1", [TaskOutcome(record.id, TaskStatus.PENDING, error=error,
                                            run_at=T0 + 5, context={"a": 1})], now=T0)
    got = await storage.get(record.id)
    assert got is not None
    assert (got.status, got.run_at, got.error, got.context, got.worker_id) == (
        TaskStatus.PENDING, T0 + 5, error, {"a": 1}, None)
    assert await claim_ids(storage, now=T0 + 4) == []
    [again] = await storage.claim("w1", 1, 30, now=T0 + 5)
    assert (again.attempts, again.context) == (2, {"a": 1})


async def test_finish_ignored_without_lease(storage: QueueStorage) -> None:
    record = rec()
    await storage.enqueue([record], now=T0)
    await storage.claim("w1", 1, 30, now=T0)
    assert await storage.finish("w2", [TaskOutcome(record.id, TaskStatus.SUCCEEDED)]) == []
    assert (await storage.get(record.id)).status is TaskStatus.RUNNING  # type: ignore[union-attr]


async def test_reclaim_expired_retries_or_fails(storage: QueueStorage) -> None:
    retryable = rec(max_retries=1)
    final = rec(max_retries=0)
    child = rec(parents=(final.id,))
    await storage.enqueue([retryable, final, child], now=T0)
    await storage.claim("w1", 2, 10, now=T0)
    assert await storage.reclaim_expired(now=T0 + 5) == []
    assert sorted(await storage.reclaim_expired(now=T0 + 11)) == sorted([retryable.id, final.id])
    back = await storage.get(retryable.id)
    assert back is not None and back.status is TaskStatus.PENDING
    assert back.error is not None and back.error.type == "LeaseExpired"
    dead = await storage.get(final.id)
    assert dead is not None and dead.status is TaskStatus.FAILED
    assert dead.error is not None and dead.error.type == "LeaseExpired"
    assert (await storage.get(child.id)).status is TaskStatus.CANCELLED  # type: ignore[union-attr]
    assert await claim_ids(storage, now=T0 + 11, worker="w2") == [retryable.id]


async def test_cancel_pending_running_terminal(storage: QueueStorage) -> None:
    pending, running = rec(), rec()
    await storage.enqueue([running], now=T0)
    await storage.claim("w1", 1, 30, now=T0)
    await storage.enqueue([pending], now=T0)
    assert (await storage.cancel(pending.id, "nope", now=T0)).status is TaskStatus.CANCELLED
    after = await storage.cancel(running.id, "stop", now=T0)
    assert after.status is TaskStatus.RUNNING and after.cancel_requested
    await storage.finish("w1", [TaskOutcome(running.id, TaskStatus.CANCELLED,
                                            cancel_reason="stop")], now=T0)
    done = await storage.cancel(running.id, "again", now=T0)
    assert done.status is TaskStatus.CANCELLED and done.cancel_reason == "stop"
    with pytest.raises(TaskNotFound):
        await storage.cancel("missing", "x")


async def test_requeue_failed_task(storage: QueueStorage) -> None:
    record = rec()
    await storage.enqueue([record], now=T0)
    await storage.claim("w1", 1, 30, now=T0)
    await storage.finish("w1", [TaskOutcome(record.id, TaskStatus.FAILED,
                                            error=TaskErrorInfo("E", "x"))], now=T0)
    again = await storage.requeue(record.id, now=T0)
    assert (again.status, again.attempts, again.error) == (TaskStatus.PENDING, 0, None)
    assert await claim_ids(storage) == [record.id]
    with pytest.raises(ValueError, match="only failed or cancelled"):
        await storage.requeue(record.id)
    with pytest.raises(TaskNotFound):
        await storage.requeue("missing")


async def test_list_pages_newest_first(storage: QueueStorage) -> None:
    records = [rec(created_at=T0 + i) for i in range(7)]
    await storage.enqueue(records, now=T0 + 10)
    await storage.claim("w1", 3, 30, now=T0 + 10)
    everything = [r.id for r in await storage.list(limit=100)]
    assert everything == [r.id for r in reversed(records)]
    pending = [r.id for r in await storage.list(TaskStatus.PENDING, limit=100)]
    assert len(pending) == 4
    for offset in range(9):
        page = [r.id for r in await storage.list(limit=3, offset=offset)]
        assert page == everything[offset:offset + 3]
        page = [r.id for r in await storage.list(TaskStatus.PENDING, limit=3, offset=offset)]
        assert page == pending[offset:offset + 3]


async def test_children_of_a_task(storage: QueueStorage) -> None:
    parent, other = rec(created_at=T0), rec(created_at=T0)
    kids = [rec(parents=(parent.id,), created_at=T0 + 3 - i) for i in range(3)]
    both = rec(parents=(parent.id, other.id), created_at=T0 + 5)
    await storage.enqueue([parent, other, *kids, both], now=T0)
    found = [r.id for r in await storage.children(parent.id)]
    assert found == [k.id for k in reversed(kids)] + [both.id]
    assert [r.id for r in await storage.children(other.id)] == [both.id]
    assert len(await storage.children(parent.id, limit=2)) == 2
    assert await storage.children(both.id) == []
    assert await storage.children("missing") == []


async def test_list_stats_and_purge(storage: QueueStorage) -> None:
    records = [rec(created_at=T0 + i) for i in range(4)]
    await storage.enqueue(records, now=T0 + 10)
    listed = await storage.list(limit=10)
    assert [r.id for r in listed] == [r.id for r in reversed(records)]
    await storage.claim("w1", 2, 30, now=T0 + 10)
    claimed = [r for r in await storage.list(TaskStatus.RUNNING)]
    await storage.finish("w1", [TaskOutcome(claimed[0].id, TaskStatus.SUCCEEDED)], now=T0 + 20)
    stats = await storage.stats(now=T0 + 30)
    assert stats.counts[TaskStatus.PENDING] == 2
    assert stats.counts[TaskStatus.RUNNING] == 1
    assert stats.counts[TaskStatus.SUCCEEDED] == 1
    assert stats.oldest_pending_at == T0 + 2
    assert await storage.purge([TaskStatus.SUCCEEDED], finished_before=T0 + 15) == 0
    assert await storage.purge([TaskStatus.SUCCEEDED, TaskStatus.PENDING]) == 1
    assert (await storage.stats()).counts[TaskStatus.SUCCEEDED] == 0
    assert (await storage.stats()).counts[TaskStatus.PENDING] == 2


async def test_save_progress_visible_while_running(storage: QueueStorage) -> None:
    record = rec()
    await storage.enqueue([record], now=T0)
    await storage.claim("w1", 1, 30, now=T0)
    await storage.save_progress("w1", record.id, {"progress": 40}, ["half"])
    got = await storage.get(record.id)
    assert got is not None and (got.context, list(got.logs)) == ({"progress": 40}, ["half"])
    await storage.save_progress("w2", record.id, {"progress": 99}, [])
    assert (await storage.get(record.id)).context == {"progress": 40}  # type: ignore[union-attr]


async def test_workers_registry(storage: QueueStorage) -> None:
    info = WorkerInfo(id="w1", hostname="h", pid=1, concurrency=4, started_at=T0,
                      last_heartbeat=T0)
    await storage.register_worker(info)
    info.last_heartbeat = T0 + 5
    await storage.register_worker(info)
    [found] = await storage.list_workers()
    assert (found.id, found.last_heartbeat) == ("w1", T0 + 5)
    await storage.unregister_worker("w1")
    assert await storage.list_workers() == []


async def test_listen_wakes_on_enqueue_and_cancel(storage: QueueStorage) -> None:
    wakeups: list[int] = []
    cancelled: list[str] = []
    changed = anyio.Event()

    def on_work() -> None:
        wakeups.append(1)
        changed.set()

    def on_cancel(task_id: str) -> None:
        cancelled.append(task_id)
        changed.set()

    running = rec()
    await storage.enqueue([running])
    await storage.claim("w1", 1, 30)
    async with anyio.create_task_group() as tg:
        tg.start_soon(storage.listen, on_work, on_cancel)
        await anyio.sleep(0.2)
        before = len(wakeups)
        with anyio.fail_after(5):
            await storage.enqueue([rec()])
            while len(wakeups) == before:
                changed = anyio.Event()
                await changed.wait()
            await storage.cancel(running.id, "stop")
            while not cancelled:
                changed = anyio.Event()
                await changed.wait()
        tg.cancel_scope.cancel()
    assert cancelled == [running.id]


async def test_retry_storm_does_not_starve_fresh_work(storage: QueueStorage) -> None:
    stormers = [rec(max_retries=10_000, created_at=T0) for _ in range(20)]
    fresh = [rec(created_at=T0 + 0.5) for _ in range(50)]
    await storage.enqueue(stormers, now=T0)
    await storage.enqueue(fresh, now=T0 + 0.5)
    waiting = {r.id for r in fresh}
    storm_ids = {r.id for r in stormers}
    retries = 0
    now = T0 + 1
    for _ in range(200):
        if not waiting:
            break
        now += 0.001
        claimed = await storage.claim("w1", 5, 30, now=now)
        waiting -= {r.id for r in claimed}
        again = [TaskOutcome(r.id, TaskStatus.PENDING, run_at=now,
                             error=TaskErrorInfo("Retry", "at once"))
                 for r in claimed if r.id in storm_ids]
        retries += len(again)
        await storage.finish("w1", again, now=now)
        await storage.finish("w1", [TaskOutcome(r.id, TaskStatus.SUCCEEDED)
                                    for r in claimed if r.id not in storm_ids], now=now)
    assert waiting == set()
    assert retries <= 2 * len(stormers)


async def test_requeue_and_reclaim_order_by_new_due_time(storage: QueueStorage) -> None:
    old = rec(created_at=T0, max_retries=1)
    await storage.enqueue([old], now=T0)
    await storage.claim("w1", 1, 10, now=T0)
    newer = rec(created_at=T0 + 5)
    await storage.enqueue([newer], now=T0 + 5)
    assert await storage.reclaim_expired(now=T0 + 20) == [old.id]
    assert await claim_ids(storage, limit=1, now=T0 + 20) == [newer.id]
    await storage.finish("w1", [TaskOutcome(newer.id, TaskStatus.FAILED,
                                            error=TaskErrorInfo("E", "x"))], now=T0 + 21)
    await storage.requeue(newer.id, now=T0 + 30)
    assert await claim_ids(storage, limit=1, now=T0 + 40) == [old.id]


async def fail(storage: QueueStorage, task_id: str, now: float = T0) -> None:
    [claimed] = await storage.claim("w1", 1, 30, now=now)
    assert claimed.id == task_id
    await storage.finish("w1", [TaskOutcome(task_id, TaskStatus.FAILED,
                                            error=TaskErrorInfo("E", "x"))], now=now)


async def succeed_next(storage: QueueStorage, now: float = T0) -> str:
    [claimed] = await storage.claim("w1", 1, 30, now=now)
    await storage.finish("w1", [TaskOutcome(claimed.id, TaskStatus.SUCCEEDED)], now=now)
    return claimed.id


async def status_of(storage: QueueStorage, task_id: str) -> tuple[TaskStatus, str | None]:
    record = await storage.get(task_id)
    assert record is not None
    return record.status, record.cancel_reason


async def test_requeue_child_of_failed_parent_is_refused(storage: QueueStorage) -> None:
    parent = rec()
    child = rec(parents=(parent.id,))
    await storage.enqueue([parent, child], now=T0)
    await fail(storage, parent.id)
    with pytest.raises(ValueError, match=f"parent {parent.id} is failed; retry the parent"):
        await storage.requeue(child.id, now=T0)
    assert await status_of(storage, child.id) == (
        TaskStatus.CANCELLED, f"parent {parent.id} failed")


async def test_requeue_parent_revives_descendants_cancelled_because_of_it(
        storage: QueueStorage) -> None:
    root, other = rec(), rec()
    child = rec(parents=(root.id,))
    grandchild = rec(parents=(child.id,))
    both = rec(parents=(root.id, other.id))
    user_cancelled = rec(parents=(root.id,))
    await storage.enqueue([root, other, child, grandchild, both, user_cancelled], now=T0)
    await storage.cancel(user_cancelled.id, "not needed", now=T0)
    await fail(storage, root.id)
    await fail(storage, other.id)
    assert await status_of(storage, grandchild.id) == (
        TaskStatus.CANCELLED, f"parent {root.id} failed")

    again = await storage.requeue(root.id, now=T0 + 1)
    assert again.status is TaskStatus.PENDING
    for task_id in (child.id, grandchild.id):
        assert await status_of(storage, task_id) == (TaskStatus.PENDING, None)
    assert await status_of(storage, user_cancelled.id) == (TaskStatus.CANCELLED, "not needed")
    assert await status_of(storage, both.id) == (
        TaskStatus.CANCELLED, f"parent {other.id} failed")
    assert [await succeed_next(storage, T0 + 2) for _ in range(3)] == [
        root.id, child.id, grandchild.id]
    assert await claim_ids(storage, now=T0 + 2) == []

    await storage.requeue(other.id, now=T0 + 3)
    assert await status_of(storage, both.id) == (TaskStatus.PENDING, None)
    assert [await succeed_next(storage, T0 + 4) for _ in range(2)] == [other.id, both.id]


async def test_requeue_after_cancelled_parent_revives_children(storage: QueueStorage) -> None:
    parent = rec()
    children = [rec(parents=(parent.id,)) for _ in range(3)]
    await storage.enqueue([parent, *children], now=T0)
    await storage.cancel(parent.id, "stop", now=T0)
    late = rec(parents=(parent.id,))
    [stored] = await storage.enqueue([late], now=T0)
    assert stored.status is TaskStatus.CANCELLED
    await storage.requeue(parent.id, now=T0 + 1)
    assert await claim_ids(storage, now=T0 + 1) == [parent.id]
    await storage.finish("w1", [TaskOutcome(parent.id, TaskStatus.SUCCEEDED)], now=T0 + 1)
    assert sorted(await claim_ids(storage, now=T0 + 1)) == sorted(
        r.id for r in [*children, late])


async def test_requeue_refuses_a_purged_parent(storage: QueueStorage) -> None:
    parent = rec()
    child = rec(parents=(parent.id,))
    await storage.enqueue([parent, child], now=T0)
    assert await succeed_next(storage) == parent.id
    await fail(storage, child.id)
    assert await storage.purge([TaskStatus.SUCCEEDED]) == 1
    with pytest.raises(MissingParentError, match=parent.id):
        await storage.requeue(child.id, now=T0)
    assert (await status_of(storage, child.id))[0] is TaskStatus.FAILED


async def test_requeue_refuses_a_taken_unique_key(storage: QueueStorage) -> None:
    first = rec(unique_key="k")
    await storage.enqueue([first], now=T0)
    await fail(storage, first.id)
    second = rec(unique_key="k")
    await storage.enqueue([second], now=T0)
    with pytest.raises(ValueError, match=f"unique key 'k' is taken by task {second.id}"):
        await storage.requeue(first.id, now=T0)
    await storage.cancel(second.id, "make room", now=T0)
    await storage.requeue(first.id, now=T0)
    [dup] = await storage.enqueue([rec(unique_key="k")], now=T0)
    assert dup.id == first.id


async def test_fanout_larger_than_a_chunk(storage: QueueStorage) -> None:
    parent = rec()
    children = [rec(parents=(parent.id,)) for _ in range(FANOUT_CHUNK * 2 + 7)]
    chain = [rec(parents=(children[0].id,))]
    for _ in range(5):
        chain.append(rec(parents=(chain[-1].id,)))
    await storage.enqueue([parent, *children, *chain], now=T0)
    await storage.cancel(parent.id, "stop", now=T0)
    stats = await storage.stats(now=T0)
    assert stats.counts[TaskStatus.CANCELLED] == 1 + len(children) + len(chain)
    assert stats.counts[TaskStatus.PENDING] == 0
    await storage.requeue(parent.id, now=T0)
    assert (await storage.stats(now=T0)).counts[TaskStatus.PENDING] == 1 + len(children) + len(
        chain)
    assert await succeed_next(storage) == parent.id
    assert len(await claim_ids(storage, limit=10_000)) == len(children)
    assert await claim_ids(storage) == []


async def test_delete_pending_deletes_every_pending_task_and_its_children(
        storage: QueueStorage) -> None:
    running = rec(priority=9)
    await storage.enqueue([running], now=T0)
    assert await claim_ids(storage, limit=1) == [running.id]
    due, retrying = rec(priority=5), rec(priority=5, max_retries=1)
    delayed = rec(run_at=T0 + 100)
    parent = rec()
    child = rec(parents=(parent.id,))
    grandchild = rec(parents=(child.id,))
    of_running = rec(parents=(running.id,), unique_key="once")
    await storage.enqueue([due, delayed, retrying, parent, child, grandchild, of_running],
                          now=T0)
    assert await claim_ids(storage, limit=2, worker="w2") == [due.id, retrying.id]
    await storage.finish("w2", [TaskOutcome(due.id, TaskStatus.SUCCEEDED)], now=T0)
    await storage.finish("w2", [TaskOutcome(retrying.id, TaskStatus.PENDING)], now=T0)
    deleted = {delayed.id, retrying.id, parent.id, child.id, grandchild.id, of_running.id}
    assert {r.id for r in await storage.list(TaskStatus.PENDING)} == deleted

    assert await storage.delete_pending() == len(deleted)

    for task_id in deleted:
        assert await storage.get(task_id) is None
    stats = await storage.stats(now=T0 + 1000)
    assert stats.counts.get(TaskStatus.PENDING, 0) == 0
    assert stats.oldest_pending_at is None
    assert await storage.next_due_at(now=T0 + 1000) is None
    assert await claim_ids(storage, now=T0 + 1000) == []
    assert {r.id for r in await storage.list()} == {running.id, due.id}
    await storage.finish("w1", [TaskOutcome(running.id, TaskStatus.SUCCEEDED)], now=T0)
    assert await claim_ids(storage, now=T0 + 1000) == []
    assert await storage.get(of_running.id) is None
    [again] = await storage.enqueue([rec(unique_key="once")], now=T0)
    assert again.id != of_running.id
    assert await storage.delete_pending() == 1
    assert await storage.delete_pending() == 0
