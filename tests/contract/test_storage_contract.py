"""The one contract every queue backend passes (see QueueStorage's docstrings)."""

from __future__ import annotations

import os

import anyio
import pytest

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
