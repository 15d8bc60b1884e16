"""The storage interface every queue backend implements.

A backend stores and moves task records; it holds no policy. Retry decisions, timeouts,
events and argument checking live in :class:`qakeapi.queued_tasks._queue.Queue` and the
worker. What a backend *must* do atomically (one transaction / one Lua script) is listed
on each method, and is checked by the one contract suite in ``tests/contract/``.

Dependencies are storage semantics because they must be atomic with the state change
that triggers them:

* a pending task with parents is *due* only once every parent has ``succeeded``;
* when a task ends ``failed`` or ``cancelled`` (for good: not a retry), every pending or
  running descendant becomes ``cancelled`` with ``cancel_reason = "parent <id> failed"``
  (or ``"... was cancelled"``, ``<id>`` the task that ended), transitively;
* a task enqueued with a parent that already failed or was cancelled is stored
  ``cancelled`` with that reason;
* ``requeue`` re-evaluates the parents: it refuses a task whose parent failed or was
  cancelled (retry the parent first) or no longer exists, and a requeued task brings back
  the descendants cancelled *because of it* (their reason names it), transitively, pending
  on it again. A descendant that still has another failed or cancelled parent stays
  cancelled, its reason now naming that parent. So no path leaves a task pending with
  nothing that can ever release it.

Fan-outs (releasing, cancelling or reviving the children of one task) run in steps of at
most :data:`~qakeapi.constants.FANOUT_CHUNK` children; the triggering state change and a
durable note of the work left are one atomic step, so a child of a cancelled parent is
never claimed meanwhile (it still waits on that parent), and the work left is finished by
the call that started it or, if that process dies, by the next ``reclaim_expired``.

Order on claim: higher ``priority`` first, then earlier *due time*: ``run_at`` when set,
else the time the task (last) became pending — ``created_at`` when enqueued, the retry
time after a retry, the moment of a requeue or a reclaim. A task that keeps asking to be
retried at once therefore queues behind work that was due before it.

Times are UNIX timestamps. ``now`` parameters exist so the contract suite can move the
clock; the queue and the worker never pass them. Without ``now`` a backend reads the
clock that decides leases and due times: ``clock()`` on memory and SQLite (one machine),
the Redis server's ``TIME`` on Redis, so clients with skewed clocks agree.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field

from ...types import QueueStats, TaskOutcome, TaskPage, TaskRecord, TaskStatus, WorkerInfo

__all__ = ["LOST_WORKER", "QueueStorage", "RenewResult", "blocked_reasons", "cascade_reasons",
           "dead_reason"]

LOST_WORKER = "the worker running it stopped heartbeating (lease expired)"
"""The error message of a task reclaimed because its lease expired."""


@dataclass(slots=True)
class RenewResult:
    """Answer to :meth:`QueueStorage.renew`."""

    lost: set[str] = field(default_factory=set)
    """Ids whose lease this worker no longer holds (expired and reclaimed, or finished)."""
    cancel_requested: set[str] = field(default_factory=set)
    """Ids someone asked to cancel while they run: the worker must stop them."""


def dead_reason(task_id: str, status: TaskStatus | str) -> str:
    """The ``cancel_reason`` of a descendant of ``task_id``, which ended ``status``."""
    verb = "failed" if TaskStatus(status) is TaskStatus.FAILED else "was cancelled"
    return f"parent {task_id} {verb}"


def cascade_reasons(task_id: str) -> tuple[str, str]:
    """The reasons of descendants cancelled because ``task_id`` failed or was cancelled."""
    return dead_reason(task_id, TaskStatus.FAILED), dead_reason(task_id, TaskStatus.CANCELLED)


def blocked_reasons(task_id: str, why: str) -> tuple[str, str]:
    """A descendant that a requeue can't bring back: its own reason, its descendants'."""
    return why, dead_reason(task_id, TaskStatus.CANCELLED)


class QueueStorage(abc.ABC):
    """Persistence for queued tasks. One instance per process; safe for concurrent use."""

    url: str
    clock: Callable[[], float]
    """This process's clock (``time.time``); tests replace it to skew one client."""

    # -- lifecycle ------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None:
        """Open connections / create schema. Raise ``BackendUnavailable`` with a clear
        message when the backend can't be reached or used (bad file, wrong password)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every resource. Idempotent."""

    # -- producing ------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(self, records: Sequence[TaskRecord], *, now: float | None = None) -> (
        list[TaskRecord]
    ):
        """Store a batch, atomically (all or nothing), and wake idle workers.

        Records arrive ``pending`` with ids, encoded args, ``created_at`` and options set.
        Parents may be earlier records of the same batch. For each record, in order:

        * a parent id that names no stored task (nor an earlier record of the batch)
          raises ``MissingParentError`` naming it, and nothing of the batch is stored;
        * a ``unique_key`` already used by a stored *non-terminal* task: nothing new is
          stored, the existing record is returned in its place;
        * a parent already ``failed``/``cancelled``: stored ``cancelled`` with the reason.

        Returns the stored records (same order as given).
        """

    # -- consuming ------------------------------------------------------------------
    @abc.abstractmethod
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, *, now: float | None = None
    ) -> list[TaskRecord]:
        """Atomically take up to ``limit`` due tasks for ``worker_id``.

        Due: ``pending``, ``run_at`` is None or <= now, every parent ``succeeded``.
        Order: higher ``priority`` first, then earlier due time (module docstring), then
        enqueue order. Each claimed task becomes ``running`` with ``attempts += 1``,
        ``started_at = now``, ``worker_id``, ``lease_expires_at = now + lease_seconds``.
        Two workers never claim the same task while its lease is valid.
        """

    @abc.abstractmethod
    async def renew(
        self,
        worker_id: str,
        ids: Collection[str],
        lease_seconds: float,
        *,
        now: float | None = None,
    ) -> RenewResult:
        """Extend the leases of ``ids`` still held by ``worker_id`` (heartbeat)."""

    @abc.abstractmethod
    async def save_progress(
        self, worker_id: str, task_id: str, context: dict[str, object], logs: list[str]
    ) -> None:
        """Store a running task's context and log lines so others can see them."""

    @abc.abstractmethod
    async def finish(
        self, worker_id: str, outcomes: Sequence[TaskOutcome], *, now: float | None = None
    ) -> list[str]:
        """Record outcomes of tasks claimed by ``worker_id``; returns the ids accepted.

        An outcome for a task this worker no longer holds (lease lost, or cancelled and
        already recorded) is ignored and not returned. Per outcome, atomically:

        * SUCCEEDED: store result, ``finished_at``; children may become due;
        * FAILED / CANCELLED: store error or ``cancel_reason``, ``finished_at``; cancel
          descendants (module docstring);
        * PENDING (retry later): back to ``pending`` with ``run_at`` and ``error`` set,
          ``worker_id``/lease cleared, attempts kept; wake workers at ``run_at``.

        ``context``/``logs`` of the outcome, when given, replace the stored ones.
        """

    @abc.abstractmethod
    async def reclaim_expired(self, *, now: float | None = None) -> list[str]:
        """Recover tasks whose lease expired (their worker died); returns their ids.

        Atomically per task: when ``attempts <= max_retries`` it goes back to ``pending``
        (due now), else it becomes ``failed`` with error type ``"LeaseExpired"`` (and its
        descendants are cancelled). Either way ``error`` says the worker was lost.
        """

    @abc.abstractmethod
    async def next_due_at(self, *, now: float | None = None) -> float | None:
        """Earliest time a pending task with no unfinished parent becomes due, or None."""

    @abc.abstractmethod
    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        """Run until cancelled, calling ``on_work()`` when tasks may have become due and
        ``on_cancel(task_id)`` when a running task is asked to stop. Must not busy-poll.
        Callbacks are plain, fast and never raise."""

    # -- operating ------------------------------------------------------------------
    @abc.abstractmethod
    async def cancel(self, task_id: str, reason: str, *, now: float | None = None) -> TaskRecord:
        """Cancel a task. Pending: ``cancelled`` at once (+ descendants). Running: set
        ``cancel_requested`` and notify its worker (which reports CANCELLED). Terminal:
        unchanged. Returns the record after the change; ``TaskNotFound`` if no such id."""

    @abc.abstractmethod
    async def requeue(self, task_id: str, *, now: float | None = None) -> TaskRecord:
        """Run a ``failed`` or ``cancelled`` task again: ``pending``, due now, attempts 0,
        error/result/cancel_reason cleared, context and logs kept, waiting on its parents
        that have not succeeded; the descendants cancelled because of it come back too
        (module docstring). ``TaskNotFound`` if no such id; ``MissingParentError`` if a
        parent no longer exists; ``ValueError`` naming the reason if it is not
        failed/cancelled, a parent failed or was cancelled, or another active task holds
        its ``unique_key``."""

    @abc.abstractmethod
    async def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None. A corrupt stored record raises ``CorruptTaskError``."""

    @abc.abstractmethod
    async def list(
        self,
        status: TaskStatus | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[TaskRecord]:
        """Records, newest ``created_at`` first, optionally of one status."""

    @abc.abstractmethod
    async def page(self, *, status: TaskStatus | None = None, name: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> TaskPage:
        """One page of the tasks of ``status`` and/or ``name`` (or all), newest
        ``created_at`` first, read from ``cursor`` (a ``TaskPage.older`` or ``.newer`` of
        this same listing) or from the top. Read through an index from the cursor's
        position, never by skipping rows, so every page costs about the same on a queue of
        any size; paging from the top to the end returns each task that matches throughout
        exactly once, in order, while tasks are added or change state.

        ``limit`` is an int from 1 to ``TASK_PAGE_MAX`` (TypeError/ValueError otherwise);
        a cursor that is garbage, altered, or made by another backend or for other filters
        raises :class:`~qakeapi.exceptions.InvalidCursor`. See :mod:`._paging`."""

    @abc.abstractmethod
    async def children(self, task_id: str, *, limit: int = 100) -> builtins.list[TaskRecord]:
        """Up to ``limit`` stored tasks that have ``task_id`` among their parents, oldest
        ``created_at`` first (which ones, when there are more, is up to the backend)."""

    @abc.abstractmethod
    async def stats(self, *, now: float | None = None) -> QueueStats:
        """Counts by status (without scanning every record where the backend can) and the
        ``created_at`` of the oldest due pending task."""

    @abc.abstractmethod
    async def purge(
        self,
        statuses: Collection[TaskStatus],
        *,
        finished_before: float | None = None,
    ) -> int:
        """Delete terminal tasks of ``statuses`` (only terminal ones are ever deleted),
        finished before ``finished_before`` if given. Returns how many."""

    # -- workers --------------------------------------------------------------------
    @abc.abstractmethod
    async def register_worker(self, info: WorkerInfo) -> None:
        """Insert or update a worker's row (also used as its heartbeat)."""

    @abc.abstractmethod
    async def unregister_worker(self, worker_id: str) -> None:
        """Remove a worker's row."""

    @abc.abstractmethod
    async def list_workers(self) -> builtins.list[WorkerInfo]:
        """Every registered worker (callers filter stale ones by ``last_heartbeat``)."""

    async def change_marker(self) -> Hashable | None:
        """A value that differs after any change to the stored tasks or workers, by any
        process, read without reading them; None when the backend can't tell that cheaply
        (then a reader that wants fresh data reads it)."""
        return None

    # -- clearing -------------------------------------------------------------------
    @abc.abstractmethod
    async def delete_pending(self) -> int:
        """Delete every ``pending`` task (due, delayed, retrying or waiting on parents),
        atomically; returns how many. Running and finished tasks stay. No pending task is
        left waiting on a deleted one: a child of a pending task is itself pending, so it
        is deleted too. A running parent simply loses its deleted children."""
