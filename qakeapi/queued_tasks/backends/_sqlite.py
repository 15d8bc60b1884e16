"""``sqlite:///path/queue.db``: a durable queue on one machine, no server to run.

One connection per process (WAL mode, ``synchronous=NORMAL``, see :mod:`._sqlite_connect`),
used from a worker thread so the event loop never blocks. Every state change is one
``BEGIN IMMEDIATE`` transaction (:mod:`._sqlite_lifecycle`; operators' queries are in
:mod:`._sqlite_admin`), so several worker processes can claim from the same file safely. Idle
workers are woken through Unix datagram sockets (:mod:`._sqlite_notify`), not by polling.
"""

from __future__ import annotations

import builtins
import functools
import sqlite3
import time
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, TypeVar

import anyio

from ...exceptions import BackendUnavailable
from ...types import QueueStats, TaskOutcome, TaskPage, TaskRecord, TaskStatus, WorkerInfo
from . import _sqlite_admin as admin
from . import _sqlite_lifecycle as life
from ._base import QueueStorage, RenewResult
from ._paging import listing, page_of
from ._sqlite_connect import backend_error, open_connection, path_from_url
from ._sqlite_deps import FanoutResult
from ._sqlite_notify import Notifier

__all__ = ["SQLiteStorage", "path_from_url"]

T = TypeVar("T")
WAKE = b"w"


class SQLiteStorage(QueueStorage):
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.clock: Callable[[], float] = time.time
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._notifier = Notifier(self.path)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._conn
        if conn is None:
            raise BackendUnavailable(f"the SQLite queue {self.path} is not connected")
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, conn, *args), limiter=self._limiter
            )
        except sqlite3.DatabaseError as exc:
            error = backend_error(self.path, exc)
            if error is None:
                raise
            raise error from exc

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    async def connect(self) -> None:
        self._conn = await anyio.to_thread.run_sync(open_connection, self.path,
                                                    limiter=self._limiter)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)
        self._notifier.close()

    # -- producing ------------------------------------------------------------------------
    async def enqueue(self, records: Sequence[TaskRecord], *, now: float | None = None) -> (
        builtins.list[TaskRecord]
    ):
        stored = await self._run(life.enqueue, records, self._now(now))
        self._notifier.send(WAKE)
        return stored

    # -- consuming ------------------------------------------------------------------------
    async def claim(self, worker_id: str, limit: int, lease_seconds: float, *,
                    now: float | None = None) -> builtins.list[TaskRecord]:
        return await self._run(life.claim, worker_id, limit, lease_seconds, self._now(now))

    async def renew(self, worker_id: str, ids: Collection[str], lease_seconds: float, *,
                    now: float | None = None) -> RenewResult:
        return await self._run(life.renew, worker_id, builtins.list(ids), lease_seconds,
                               self._now(now))

    async def save_progress(self, worker_id: str, task_id: str, context: dict[str, object],
                            logs: builtins.list[str]) -> None:
        await self._run(life.save_progress, worker_id, task_id, context, logs)

    async def finish(self, worker_id: str, outcomes: Sequence[TaskOutcome], *,
                     now: float | None = None) -> builtins.list[str]:
        now = self._now(now)
        accepted, fanout = await self._run(life.finish, worker_id, outcomes, now)
        await self._fanout_done(fanout, now, wake=False)
        return accepted

    async def _fanout_done(self, fanout: FanoutResult, now: float, *, wake: bool) -> None:
        """Finish noted fan-outs, one transaction per chunk, then wake workers if needed."""
        wake = wake or fanout.released
        while fanout.more:
            started = time.monotonic()
            fanout = await self._run(life.fanout_chunk, now)
            wake = wake or fanout.released
            await anyio.sleep(time.monotonic() - started)  # other writers' turn
        if wake:
            self._notifier.send(WAKE)

    async def reclaim_expired(self, *, now: float | None = None) -> builtins.list[str]:
        now = self._now(now)
        ids, fanout = await self._run(life.reclaim, now)
        await self._fanout_done(fanout, now, wake=bool(ids))
        return ids

    async def next_due_at(self, *, now: float | None = None) -> float | None:
        return await self._run(life.next_due, self._now(now))

    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        await self._notifier.listen(on_work, on_cancel)

    # -- operating ------------------------------------------------------------------------
    async def cancel(self, task_id: str, reason: str, *, now: float | None = None) -> TaskRecord:
        now = self._now(now)
        record, fanout = await self._run(life.cancel, task_id, reason, now)
        await self._fanout_done(fanout, now, wake=False)
        if record.status is TaskStatus.RUNNING:
            self._notifier.send(b"c:" + task_id.encode())
        return record

    async def requeue(self, task_id: str, *, now: float | None = None) -> TaskRecord:
        now = self._now(now)
        record, fanout = await self._run(life.requeue, task_id, now)
        await self._fanout_done(fanout, now, wake=True)
        return record

    async def get(self, task_id: str) -> TaskRecord | None:
        return await self._run(admin.find_task, task_id)

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> builtins.list[TaskRecord]:
        return await self._run(admin.list_tasks, status, limit, offset)

    async def page(self, *, status: TaskStatus | None = None, name: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> TaskPage:
        request, position = listing("sqlite", status, name, limit, cursor)
        return page_of(request, position, await self._run(admin.page_rows, request, position))

    async def children(self, task_id: str, *, limit: int = 100) -> builtins.list[TaskRecord]:
        return await self._run(admin.list_children, task_id, limit)

    async def stats(self, *, now: float | None = None) -> QueueStats:
        return await self._run(admin.read_stats, self._now(now))

    async def purge(self, statuses: Collection[TaskStatus], *,
                    finished_before: float | None = None) -> int:
        chosen = [s.value for s in statuses if s.is_terminal]
        if not chosen:
            return 0
        return await self._run(admin.purge, chosen, finished_before)

    # -- workers --------------------------------------------------------------------------
    async def register_worker(self, info: WorkerInfo) -> None:
        await self._run(admin.register_worker, info)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._run(admin.unregister_worker, worker_id)

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        return await self._run(admin.list_workers)

    async def change_marker(self) -> Hashable:
        return await self._run(admin.change_marker)

    # -- clearing -------------------------------------------------------------------------
    async def delete_pending(self) -> int:
        return await self._run(admin.delete_pending)
