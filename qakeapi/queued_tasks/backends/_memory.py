"""``memory://``: the queue inside the app's process (the default).

Nothing survives the process; use ``sqlite://`` or ``redis://`` for durable tasks. This is
also the reference implementation of :class:`QueueStorage` semantics.
"""

from __future__ import annotations

import builtins
import copy
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ...exceptions import CorruptTaskError, MissingParentError, TaskNotFound
from ...types import (
    TERMINAL_STATUSES,
    QueueStats,
    TaskErrorInfo,
    TaskOutcome,
    TaskPage,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from ._base import (
    LOST_WORKER,
    QueueStorage,
    RenewResult,
    blocked_reasons,
    cascade_reasons,
    dead_reason,
)
from ._paging import listing, matches, nearest, page_of
from ._rows import corrupt, decode_record, placeholder

__all__ = ["MemoryStorage"]

logger = logging.getLogger("qakeapi.queue")
PENDING, RUNNING = TaskStatus.PENDING, TaskStatus.RUNNING


def _checked(record: TaskRecord) -> tuple[TaskRecord, CorruptTaskError | None]:
    """``record`` as a durable backend would read it back, or a placeholder and the reason
    when a field can't be stored: the same checks as reading a SQLite or Redis row, so every
    backend fails the same records."""
    data: dict[str, Any] = {"id": record.id}
    try:
        data = record.to_dict()
        readable = decode_record(dict(data))
    except Exception as exc:  # a field of the wrong kind: the record is corrupt
        error = exc if isinstance(exc, CorruptTaskError) else corrupt(record.id, exc)
        logger.error("%s: recorded failed", error)
        return placeholder(data, error), error
    return readable, None


def _copy(record: TaskRecord) -> TaskRecord:
    out = copy.copy(record)
    out.context = copy.deepcopy(record.context)
    out.logs = list(record.logs)
    return out


class MemoryStorage(QueueStorage):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.clock: Callable[[], float] = time.time
        self._tasks: dict[str, TaskRecord] = {}
        self._seq: dict[str, int] = {}
        self._due: dict[str, float] = {}
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
            heapq.heappush(self._ready, (-record.priority, self._due[record.id], seq, record.id))

    def _pending_again(self, record: TaskRecord, run_at: float | None, now: float) -> None:
        """Back to ``pending``, ordered by when it is due again (not by when it was made)."""
        record.status = PENDING
        record.worker_id = None
        record.lease_expires_at = None
        record.run_at = run_at
        self._due[record.id] = now if run_at is None else run_at
        if self._waiting_on.get(record.id, 0) <= 0:
            self._schedule(record, now)

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
            cascade_reason = dead_reason(record.id, status)
        self._cascade(record.id, cascade_reason, now)

    def _cascade(self, task_id: str, reason: str, now: float) -> None:
        for child_id in self._children.get(task_id, ()):
            child = self._tasks[child_id]
            if child.status not in TERMINAL_STATUSES:
                child.cancel_reason = reason
                self._end(child, TaskStatus.CANCELLED, now, reason)

    # -- producing ------------------------------------------------------------------
    async def enqueue(self, records: Sequence[TaskRecord], *, now: float | None = None) -> (
        builtins.list[TaskRecord]
    ):
        now = self.clock() if now is None else now
        checked = [_checked(record) for record in records]
        earlier: set[str] = set()
        for record, _ in checked:
            for parent in record.parents:
                if parent not in self._tasks and parent not in earlier:
                    raise MissingParentError(
                        f"parent task {parent!r} of {record.name} does not exist"
                    )
            earlier.add(record.id)
        stored: builtins.list[TaskRecord] = []
        for record, unreadable in checked:
            if unreadable is not None:
                self._store_unreadable(record, now)
                stored.append(_copy(record))
                continue
            if record.unique_key is not None and record.unique_key in self._unique:
                stored.append(_copy(self._tasks[self._unique[record.unique_key]]))
                continue
            record = _copy(record)
            self._tasks[record.id] = record
            self._seq[record.id] = next(self._counter)
            self._due[record.id] = record.run_at if record.run_at is not None else (
                record.created_at)
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
                record.cancel_reason = dead_reason(dead_parent.id, dead_parent.status)
                self._end(record, TaskStatus.CANCELLED, now)
            elif unfinished == 0:
                self._schedule(record, now)
            stored.append(_copy(record))
        self._wake()
        return stored

    def _store_unreadable(self, record: TaskRecord, now: float) -> None:
        """Keep a record that failed the checks as ``failed``, its error saying why."""
        self._tasks[record.id] = record
        self._seq[record.id] = next(self._counter)
        self._waiting_on[record.id] = 0
        self._end(record, TaskStatus.FAILED, now)

    # -- consuming ------------------------------------------------------------------
    def _move_due(self, now: float) -> None:
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, task_id = heapq.heappop(self._scheduled)
            record = self._tasks.get(task_id)
            if record is not None and record.status is PENDING:
                heapq.heappush(self._ready, (-record.priority, self._due[task_id],
                                             self._seq[task_id], task_id))

    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, *, now: float | None = None
    ) -> builtins.list[TaskRecord]:
        now = self.clock() if now is None else now
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
        now = self.clock() if now is None else now
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
        now = self.clock() if now is None else now
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
                self._pending_again(record, outcome.run_at, now)
                wake = True
                continue
            record.result = outcome.result
            if outcome.status is TaskStatus.CANCELLED:
                record.cancel_reason = outcome.cancel_reason or record.cancel_reason or "cancelled"
            self._end(record, outcome.status, now)
            if (outcome.status is TaskStatus.SUCCEEDED and record.auto_remove
                    and not self._children.get(record.id)):
                self._forget(record.id)
            wake = wake or outcome.status is TaskStatus.SUCCEEDED
        if wake:
            self._wake()
        return accepted

    async def reclaim_expired(self, *, now: float | None = None) -> builtins.list[str]:
        now = self.clock() if now is None else now
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
                self._pending_again(record, None, now)
            else:
                self._end(record, TaskStatus.FAILED, now)
        if reclaimed:
            self._wake()
        return reclaimed

    async def next_due_at(self, *, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
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
        now = self.clock() if now is None else now
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
        now = self.clock() if now is None else now
        record = self._tasks.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        if record.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise ValueError(f"task {task_id} is {record.status.value}; only failed or "
                             f"cancelled tasks can be retried")
        for parent_id in record.parents:
            parent = self._tasks.get(parent_id)
            if parent is None:
                raise MissingParentError(f"task {task_id} can't be retried: its parent "
                                         f"{parent_id} no longer exists")
            if parent.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
                raise ValueError(f"task {task_id} can't be retried: its parent {parent_id} "
                                 f"is {parent.status.value}; retry the parent first")
        holder = self._unique_holder(record)
        if holder is not None:
            raise ValueError(f"task {task_id} can't be retried: its unique key "
                             f"{record.unique_key!r} is taken by task {holder}")
        self._revive(record, now)
        self._revive_descendants(task_id, now)
        self._wake()
        return _copy(record)

    def _unique_holder(self, record: TaskRecord) -> str | None:
        holder = self._unique.get(record.unique_key) if record.unique_key else None
        return holder if holder is not None and holder != record.id else None

    def _revive(self, record: TaskRecord, now: float) -> None:
        record.attempts = 0
        record.error = None
        record.result = None
        record.cancel_reason = None
        record.cancel_requested = False
        record.finished_at = None
        if record.unique_key:
            self._unique[record.unique_key] = record.id
        parents = [self._tasks.get(p) for p in record.parents]
        self._waiting_on[record.id] = sum(
            1 for p in parents if p is not None and p.status is not TaskStatus.SUCCEEDED)
        self._pending_again(record, None, now)

    def _revive_descendants(self, root_id: str, now: float) -> None:
        """Bring back the descendants cancelled because ``root_id`` ended (see base)."""
        reasons = cascade_reasons(root_id)
        stack = [root_id]
        while stack:
            for child_id in sorted(self._children.get(stack.pop(), ())):
                child = self._tasks.get(child_id)
                if (child is None or child.status is not TaskStatus.CANCELLED
                        or child.cancel_reason not in reasons):
                    continue
                blocked = self._revive_blocked(child, reasons)
                if blocked is not None:
                    child.cancel_reason, cascade = blocked
                    self._cascade(child_id, cascade, now)
                    continue
                self._revive(child, now)
                stack.append(child_id)

    def _revive_blocked(self, record: TaskRecord, reasons: tuple[str, str]
                        ) -> tuple[str, str] | None:
        """Why ``record`` stays cancelled while its ancestor is retried (its own reason, and
        the reason for its descendants), or None."""
        for parent_id in record.parents:
            parent = self._tasks.get(parent_id)
            if parent is None:
                return blocked_reasons(record.id, f"parent {parent_id} no longer exists")
            if parent.status is TaskStatus.FAILED or (
                    parent.status is TaskStatus.CANCELLED and parent.cancel_reason not in reasons):
                reason = dead_reason(parent_id, parent.status)
                return reason, reason
        holder = self._unique_holder(record)
        if holder is not None:
            return blocked_reasons(
                record.id, f"unique key {record.unique_key!r} is taken by task {holder}")
        return None

    async def get(self, task_id: str) -> TaskRecord | None:
        record = self._tasks.get(task_id)
        return None if record is None else _copy(record)

    async def children(self, task_id: str, *, limit: int = 100) -> builtins.list[TaskRecord]:
        records = [self._tasks[c] for c in self._children.get(task_id, ()) if c in self._tasks]
        records.sort(key=lambda r: (r.created_at, self._seq[r.id]))
        return [_copy(r) for r in records[:limit]]

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> builtins.list[TaskRecord]:
        records = [r for r in self._tasks.values() if status is None or r.status is status]
        records.sort(key=lambda r: (r.created_at, self._seq[r.id]), reverse=True)
        return [_copy(r) for r in records[offset: offset + limit]]

    async def page(self, *, status: TaskStatus | None = None, name: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> TaskPage:
        request, position = listing("memory", status, name, limit, cursor)
        rows = [(r.created_at, self._seq[r.id], r) for r in self._tasks.values()
                if matches(request, r)]
        chosen = nearest(rows, position, limit + 1)
        return page_of(request, position, [(c, s, _copy(r)) for c, s, r in chosen])

    async def stats(self, *, now: float | None = None) -> QueueStats:
        now = self.clock() if now is None else now
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
            self._forget(task_id)
        return len(doomed)

    def _forget(self, task_id: str) -> None:
        del self._tasks[task_id]
        self._seq.pop(task_id, None)
        self._due.pop(task_id, None)
        self._waiting_on.pop(task_id, None)
        self._children.pop(task_id, None)

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
