"""``memory://``: the queue inside the app's process (the default).

Nothing survives the process; use ``sqlite://`` or ``redis://`` for durable tasks. This is
also the reference implementation of :class:`QueueStorage` semantics.
"""

from __future__ import annotations

import builtins
import copy
import heapq
import itertools
import time
from collections.abc import Callable, Collection, Sequence

from ...exceptions import MissingParentError, TaskNotFound
from ...types import (
    TERMINAL_STATUSES,
    QueueStats,
    TaskErrorInfo,
    TaskOutcome,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from .base import QueueStorage, RenewResult

__all__ = ["MemoryStorage"]

PENDING, RUNNING = TaskStatus.PENDING, TaskStatus.RUNNING
LOST_WORKER = "the worker running it stopped heartbeating (lease expired)"


def _copy(record: TaskRecord) -> TaskRecord:
    out = copy.copy(record)
    out.context = copy.deepcopy(record.context)
    out.logs = list(record.logs)
    return out


class MemoryStorage(QueueStorage):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._tasks: dict[str, TaskRecord] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count()
        self._children: dict[str, set[str]] = {}
        self._waiting_on: dict[str, int] = {}
        self._unique: dict[str, str] = {}
        self._ready: list[tuple[int, float, int, str]] = []
        self._scheduled: list[tuple[float, int, str]] = []
        self._workers: dict[str, WorkerInfo] = {}
        self._listeners: list[tuple[Callable[[], None], Callable[[str], None]]] = []

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        self._listeners.clear()

    # -- internal helpers -----------------------------------------------------------
    def _wake(self) -> None:
        for on_work, _ in list(self._listeners):
            on_work()

    def _schedule(self, record: TaskRecord, now: float) -> None:
        """Put a pending task with no unfinished parent where claim finds it."""
        seq = self._seq[record.id]
        if record.run_at is not None and record.run_at > now:
            heapq.heappush(self._scheduled, (record.run_at, seq, record.id))
        else:
            due = record.run_at or record.created_at
            heapq.heappush(self._ready, (-record.priority, due, seq, record.id))

    def _end(self, record: TaskRecord, status: TaskStatus, now: float,
             cascade_reason: str | None = None) -> None:
        record.status = status
        record.finished_at = now
        record.worker_id = None
        record.lease_expires_at = None
        if record.unique_key and self._unique.get(record.unique_key) == record.id:
            del self._unique[record.unique_key]
        if status is TaskStatus.SUCCEEDED:
            for child_id in self._children.get(record.id, ()):
                left = self._waiting_on.get(child_id, 0) - 1
                self._waiting_on[child_id] = left
                child = self._tasks[child_id]
                if left <= 0 and child.status is PENDING:
                    self._schedule(child, now)
            return
        if cascade_reason is None:
            verb = "failed" if status is TaskStatus.FAILED else "was cancelled"
            cascade_reason = f"parent {record.id} {verb}"
        for child_id in self._children.get(record.id, ()):
            child = self._tasks[child_id]
            if child.status not in TERMINAL_STATUSES:
                child.cancel_reason = cascade_reason
                self._end(child, TaskStatus.CANCELLED, now, cascade_reason)

    # -- producing ------------------------------------------------------------------
    async def enqueue(self, records: Sequence[TaskRecord], *, now: float | None = None) -> (
        builtins.list[TaskRecord]
    ):
        now = time.time() if now is None else now
        earlier: set[str] = set()
        for record in records:
            for parent in record.parents:
                if parent not in self._tasks and parent not in earlier:
                    raise MissingParentError(
                        f"parent task {parent!r} of {record.name} does not exist"
                    )
            earlier.add(record.id)
        stored: builtins.list[TaskRecord] = []
        for record in records:
            if record.unique_key is not None and record.unique_key in self._unique:
                stored.append(_copy(self._tasks[self._unique[record.unique_key]]))
                continue
            record = _copy(record)
            self._tasks[record.id] = record
            self._seq[record.id] = next(self._counter)
            if record.unique_key is not None:
                self._unique[record.unique_key] = record.id
            unfinished = 0
            dead_parent: TaskRecord | None = None
            for parent_id in record.parents:
                self._children.setdefault(parent_id, set()).add(record.id)
                parent_record = self._tasks[parent_id]
                if parent_record.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
                    dead_parent = parent_record
                elif parent_record.status is not TaskStatus.SUCCEEDED:
                    unfinished += 1
            self._waiting_on[record.id] = unfinished
            if dead_parent is not None:
                verb = "failed" if dead_parent.status is TaskStatus.FAILED else "was cancelled"
                record.cancel_reason = f"parent {dead_parent.id} {verb}"
                self._end(record, TaskStatus.CANCELLED, now)
            elif unfinished == 0:
                self._schedule(record, now)
            stored.append(_copy(record))
        self._wake()
        return stored

    # -- consuming ------------------------------------------------------------------
    def _move_due(self, now: float) -> None:
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, task_id = heapq.heappop(self._scheduled)
            record = self._tasks.get(task_id)
            if record is not None and record.status is PENDING:
                due = record.run_at or record.created_at
                heapq.heappush(self._ready, (-record.priority, due, self._seq[task_id], task_id))

    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, *, now: float | None = None
    ) -> builtins.list[TaskRecord]:
        now = time.time() if now is None else now
        self._move_due(now)
        claimed: builtins.list[TaskRecord] = []
        while self._ready and len(claimed) < limit:
            _, _, _, task_id = heapq.heappop(self._ready)
            record = self._tasks.get(task_id)
            if record is None or record.status is not PENDING:
                continue
            if record.run_at is not None and record.run_at > now:
                heapq.heappush(self._scheduled, (record.run_at, self._seq[task_id], task_id))
                continue
            record.status = RUNNING
            record.attempts += 1
            record.started_at = now
            record.worker_id = worker_id
            record.lease_expires_at = now + lease_seconds
            claimed.append(_copy(record))
        return claimed

    def _held(self, worker_id: str, task_id: str) -> TaskRecord | None:
        record = self._tasks.get(task_id)
        if record is None or record.status is not RUNNING or record.worker_id != worker_id:
            return None
        return record

    async def renew(self, worker_id: str, ids: Collection[str], lease_seconds: float, *,
                    now: float | None = None) -> RenewResult:
        now = time.time() if now is None else now
        result = RenewResult()
        for task_id in ids:
            record = self._held(worker_id, task_id)
            if record is None:
                result.lost.add(task_id)
                continue
            record.lease_expires_at = now + lease_seconds
            if record.cancel_requested:
                result.cancel_requested.add(task_id)
        return result

    async def save_progress(self, worker_id: str, task_id: str, context: dict[str, object],
                            logs: builtins.list[str]) -> None:
        record = self._held(worker_id, task_id)
        if record is not None:
            record.context = copy.deepcopy(context)
            record.logs = list(logs)

    async def finish(self, worker_id: str, outcomes: Sequence[TaskOutcome], *,
                     now: float | None = None) -> builtins.list[str]:
        now = time.time() if now is None else now
        accepted: builtins.list[str] = []
        wake = False
        for outcome in outcomes:
            record = self._held(worker_id, outcome.id)
            if record is None:
                continue
            accepted.append(outcome.id)
            if outcome.context is not None:
                record.context = copy.deepcopy(outcome.context)
            if outcome.logs is not None:
                record.logs = list(outcome.logs)
            record.error = outcome.error
            if outcome.status is PENDING:
                record.status = PENDING
                record.worker_id = None
                record.lease_expires_at = None
                record.run_at = outcome.run_at
                self._schedule(record, now)
                wake = True
                continue
            record.result = outcome.result
            if outcome.status is TaskStatus.CANCELLED:
                record.cancel_reason = outcome.cancel_reason or record.cancel_reason or "cancelled"
            self._end(record, outcome.status, now)
            wake = wake or outcome.status is TaskStatus.SUCCEEDED
        if wake:
            self._wake()
        return accepted

    async def reclaim_expired(self, *, now: float | None = None) -> builtins.list[str]:
        now = time.time() if now is None else now
        reclaimed: builtins.list[str] = []
        for record in builtins.list(self._tasks.values()):
            if record.status is not RUNNING or record.lease_expires_at is None:
                continue
            if record.lease_expires_at > now:
                continue
            reclaimed.append(record.id)
            record.error = TaskErrorInfo("LeaseExpired", LOST_WORKER)
            if record.cancel_requested:
                record.cancel_reason = record.cancel_reason or "cancelled"
                self._end(record, TaskStatus.CANCELLED, now)
            elif record.attempts <= record.max_retries:
                record.status = PENDING
                record.worker_id = None
                record.lease_expires_at = None
                record.run_at = None
                self._schedule(record, now)
            else:
                self._end(record, TaskStatus.FAILED, now)
        if reclaimed:
            self._wake()
        return reclaimed

    async def next_due_at(self, *, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        self._move_due(now)
        for _, _, _, task_id in self._ready:
            record = self._tasks.get(task_id)
            if record is not None and record.status is PENDING:
                return now
        while self._scheduled:
            run_at, _, task_id = self._scheduled[0]
            record = self._tasks.get(task_id)
            if record is not None and record.status is PENDING:
                return run_at
            heapq.heappop(self._scheduled)
        return None

    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        import anyio

        entry = (on_work, on_cancel)
        self._listeners.append(entry)
        try:
            await anyio.sleep_forever()
        finally:
            if entry in self._listeners:
                self._listeners.remove(entry)

    # -- operating ------------------------------------------------------------------
    async def cancel(self, task_id: str, reason: str, *, now: float | None = None) -> TaskRecord:
        now = time.time() if now is None else now
        record = self._tasks.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        if record.status is PENDING:
            record.cancel_reason = reason
            self._end(record, TaskStatus.CANCELLED, now)
        elif record.status is RUNNING:
            record.cancel_requested = True
            record.cancel_reason = reason
            for _, on_cancel in builtins.list(self._listeners):
                on_cancel(task_id)
        return _copy(record)

    async def requeue(self, task_id: str, *, now: float | None = None) -> TaskRecord:
        now = time.time() if now is None else now
        record = self._tasks.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        if record.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise ValueError(f"task {task_id} is {record.status.value}; only failed or "
                             f"cancelled tasks can be retried")
        record.status = PENDING
        record.attempts = 0
        record.error = None
        record.result = None
        record.cancel_reason = None
        record.cancel_requested = False
        record.finished_at = None
        record.run_at = None
        unfinished = sum(
            1 for p in record.parents if self._tasks[p].status is not TaskStatus.SUCCEEDED
        )
        self._waiting_on[task_id] = unfinished
        if unfinished == 0:
            self._schedule(record, now)
        self._wake()
        return _copy(record)

    async def get(self, task_id: str) -> TaskRecord | None:
        record = self._tasks.get(task_id)
        return None if record is None else _copy(record)

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> builtins.list[TaskRecord]:
        records = [r for r in self._tasks.values() if status is None or r.status is status]
        records.sort(key=lambda r: (r.created_at, self._seq[r.id]), reverse=True)
        return [_copy(r) for r in records[offset: offset + limit]]

    async def stats(self, *, now: float | None = None) -> QueueStats:
        now = time.time() if now is None else now
        counts = dict.fromkeys(TaskStatus, 0)
        oldest: float | None = None
        for record in self._tasks.values():
            counts[record.status] += 1
            if (
                record.status is PENDING
                and self._waiting_on.get(record.id, 0) <= 0
                and (record.run_at is None or record.run_at <= now)
                and (oldest is None or record.created_at < oldest)
            ):
                oldest = record.created_at
        return QueueStats(counts=counts, oldest_pending_at=oldest)

    async def purge(self, statuses: Collection[TaskStatus], *,
                    finished_before: float | None = None) -> int:
        doomed = [
            r.id for r in self._tasks.values()
            if r.status in statuses and r.status in TERMINAL_STATUSES
            and (finished_before is None or (r.finished_at or 0) < finished_before)
        ]
        for task_id in doomed:
            del self._tasks[task_id]
            self._seq.pop(task_id, None)
            self._waiting_on.pop(task_id, None)
            self._children.pop(task_id, None)
        return len(doomed)

    # -- workers --------------------------------------------------------------------
    async def register_worker(self, info: WorkerInfo) -> None:
        self._workers[info.id] = copy.copy(info)

    async def unregister_worker(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        return [copy.copy(w) for w in self._workers.values()]

    # -- clearing -------------------------------------------------------------------
    async def delete_pending(self) -> int:
        doomed = [r for r in self._tasks.values() if r.status is PENDING]
        for record in doomed:
            del self._tasks[record.id]
            self._seq.pop(record.id, None)
            self._waiting_on.pop(record.id, None)
            self._children.pop(record.id, None)
            if record.unique_key and self._unique.get(record.unique_key) == record.id:
                del self._unique[record.unique_key]
        for children in self._children.values():
            children.intersection_update(self._tasks)
        self._ready = [entry for entry in self._ready if entry[3] in self._tasks]
        self._scheduled = [entry for entry in self._scheduled if entry[2] in self._tasks]
        heapq.heapify(self._ready)
        heapq.heapify(self._scheduled)
        return len(doomed)
