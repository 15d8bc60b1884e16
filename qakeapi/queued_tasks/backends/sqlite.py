"""``sqlite:///path/queue.db``: a durable queue on one machine, no server to run.

One connection per process (WAL mode, ``synchronous=NORMAL``), used from a worker thread so
the event loop never blocks. Every state change is one ``BEGIN IMMEDIATE`` transaction, so
several worker processes can claim from the same file safely. Idle workers are woken through
Unix datagram sockets (:mod:`.sqlite_notify`), not by polling.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio

from ...exceptions import (
    BackendUnavailable,
    ConfigurationError,
    MissingParentError,
    TaskNotFound,
)
from ...types import QueueStats, TaskErrorInfo, TaskOutcome, TaskRecord, TaskStatus, WorkerInfo
from .base import QueueStorage, RenewResult
from .rows import read_workers, status_or_failed
from .sqlite_deps import (
    CASCADE_JOB,
    FanoutResult,
    add_fanout,
    auto_removed,
    check_requeue,
    fanout_step,
    revive,
)
from .sqlite_notify import Notifier
from .sqlite_schema import (
    ADD_AUTO_REMOVE,
    COLUMNS,
    INSERT_SQL,
    SCHEMA,
    SCHEMA_VERSION,
    claimed_records,
    read_row,
    row_from_record,
    text_or_escaped,
)

__all__ = ["SQLiteStorage", "path_from_url"]

T = TypeVar("T")
LOST_WORKER = "the worker running it stopped heartbeating (lease expired)"
def path_from_url(url: str) -> str:
    """``sqlite:///rel/path.db`` -> ``rel/path.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(f"SQLite URL {url!r}: use sqlite:///relative/path.db or "
                                 f"sqlite:////absolute/path.db")
    path = unquote(parts.path)
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ConfigurationError(f"SQLite URL {url!r} names no file")
    return path


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SQLiteStorage(QueueStorage):
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.clock: Callable[[], float] = time.time
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._notifier = Notifier(self.path)

    # -- plumbing -----------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._conn
        if conn is None:
            raise BackendUnavailable(f"the SQLite queue {self.path} is not connected")
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, conn, *args), limiter=self._limiter
            )
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"SQLite queue {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorname.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                raise BackendUnavailable(
                    f"the SQLite queue {self.path} is damaged ({exc}): restore it from a "
                    f"backup or rescue what is left with `sqlite3 {self.path} .recover`"
                ) from exc
            raise

    @staticmethod
    @contextlib.contextmanager
    def _tx(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def connect(self) -> None:
        def open_db() -> sqlite3.Connection:
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory):
                raise BackendUnavailable(
                    f"can't open the SQLite queue {self.path}: directory {directory} does not "
                    f"exist")
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
            conn.text_factory = text_or_escaped
            try:
                conn.execute("PRAGMA busy_timeout = 30000")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise BackendUnavailable(
                        f"the SQLite queue {self.path} can't use WAL mode (got {mode})")
                conn.execute("PRAGMA synchronous = NORMAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise BackendUnavailable(
                        f"the SQLite queue {self.path} has schema version {version}; this "
                        f"qakeapi knows up to {SCHEMA_VERSION}: upgrade qakeapi")
                if version < SCHEMA_VERSION:
                    upgrade = f"{ADD_AUTO_REMOVE};" if version > 0 else ""
                    conn.executescript(f"BEGIN IMMEDIATE;{upgrade}{SCHEMA}"
                                       f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
                conn.execute("SELECT count(*) FROM workers").fetchone()
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            self._conn = await anyio.to_thread.run_sync(open_db, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise BackendUnavailable(
                f"can't use the SQLite queue {self.path}: {exc} (is it a writable SQLite "
                f"database?)") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)
        self._notifier.close()

    # -- producing ------------------------------------------------------------------------
    async def enqueue(self, records: Sequence[TaskRecord], *, now: float | None = None) -> (
        builtins.list[TaskRecord]
    ):
        now = self.clock() if now is None else now
        stored = await self._run(self._enqueue_sync, records, now)
        self._notifier.send(b"w")
        return stored

    def _enqueue_sync(self, conn: sqlite3.Connection, records: Sequence[TaskRecord],
                      now: float) -> builtins.list[TaskRecord]:
        out: builtins.list[TaskRecord] = []
        with self._tx(conn):
            for record in records:
                if record.unique_key is not None:
                    row = conn.execute(
                        f"SELECT {COLUMNS} FROM tasks WHERE unique_key = ? AND status IN "
                        f"('pending', 'running')", (record.unique_key,)).fetchone()
                    if row is not None:
                        out.append(read_row(row))
                        continue
                waiting = 0
                dead: tuple[str, str] | None = None
                for parent_id in record.parents:
                    found = conn.execute("SELECT status FROM tasks WHERE id = ?",
                                         (parent_id,)).fetchone()
                    if found is None:
                        raise MissingParentError(
                            f"parent task {parent_id!r} of {record.name} does not exist")
                    if found[0] in ("failed", "cancelled"):
                        dead = (parent_id, found[0])
                    elif found[0] != "succeeded":
                        waiting += 1
                if dead is not None:
                    verb = "failed" if dead[1] == "failed" else "was cancelled"
                    record = TaskRecord.from_dict({
                        **record.to_dict(), "status": "cancelled", "finished_at": now,
                        "cancel_reason": f"parent {dead[0]} {verb}"})
                conn.execute(INSERT_SQL, row_from_record(record, waiting))
                conn.executemany("INSERT OR IGNORE INTO deps (parent_id, child_id) VALUES (?, ?)",
                                 [(p, record.id) for p in record.parents])
                out.append(record)
        return out

    # -- consuming ------------------------------------------------------------------------
    async def claim(self, worker_id: str, limit: int, lease_seconds: float, *,
                    now: float | None = None) -> builtins.list[TaskRecord]:
        now = self.clock() if now is None else now
        return await self._run(self._claim_sync, worker_id, limit, lease_seconds, now)

    def _claim_sync(self, conn: sqlite3.Connection, worker_id: str, limit: int,
                    lease_seconds: float, now: float) -> builtins.list[TaskRecord]:
        with self._tx(conn):
            rows = conn.execute(
                f"UPDATE tasks SET status = 'running', attempts = CASE WHEN "
                f"typeof(attempts) = 'integer' THEN attempts + 1 ELSE attempts END, "
                f"started_at = ?, worker_id = ?, lease_expires_at = ? WHERE seq IN ("
                f"SELECT seq FROM tasks WHERE status = 'pending' AND waiting = 0 AND due <= ? "
                f"ORDER BY priority DESC, due, seq LIMIT ?) RETURNING priority, due, seq, "
                f"{COLUMNS}",
                (now, worker_id, now + lease_seconds, now, limit)).fetchall()
            claimed = claimed_records(conn, rows, limit, now, CASCADE_JOB)
            fanout_step(conn, now)
            return claimed

    async def renew(self, worker_id: str, ids: Collection[str], lease_seconds: float, *,
                    now: float | None = None) -> RenewResult:
        now = self.clock() if now is None else now
        return await self._run(self._renew_sync, worker_id, builtins.list(ids), lease_seconds,
                               now)

    def _renew_sync(self, conn: sqlite3.Connection, worker_id: str, ids: builtins.list[str],
                    lease_seconds: float, now: float) -> RenewResult:
        result = RenewResult()
        with self._tx(conn):
            for task_id in ids:
                row = conn.execute(
                    "UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND status = 'running' "
                    "AND worker_id = ? RETURNING cancel_requested",
                    (now + lease_seconds, task_id, worker_id)).fetchone()
                if row is None:
                    result.lost.add(task_id)
                elif row[0]:
                    result.cancel_requested.add(task_id)
        return result

    async def save_progress(self, worker_id: str, task_id: str, context: dict[str, object],
                            logs: builtins.list[str]) -> None:
        def save(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE tasks SET context = ?, logs = ? WHERE id = ? AND "
                         "status = 'running' AND worker_id = ?",
                         (_dumps(context), _dumps(logs), task_id, worker_id))

        await self._run(save)

    async def finish(self, worker_id: str, outcomes: Sequence[TaskOutcome], *,
                     now: float | None = None) -> builtins.list[str]:
        now = self.clock() if now is None else now
        accepted, fanout = await self._run(self._finish_sync, worker_id, outcomes, now)
        await self._fanout_done(fanout, now, wake=False)
        return accepted

    def _finish_sync(self, conn: sqlite3.Connection, worker_id: str,
                     outcomes: Sequence[TaskOutcome], now: float
                     ) -> tuple[builtins.list[str], FanoutResult]:
        accepted: builtins.list[str] = []
        wake = False
        with self._tx(conn):
            for o in outcomes:
                error = None if o.error is None else _dumps(o.error.to_dict())
                context = None if o.context is None else _dumps(o.context)
                logs = None if o.logs is None else _dumps(list(o.logs))
                if o.status is TaskStatus.PENDING:
                    cursor = conn.execute(
                        "UPDATE tasks SET status = 'pending', worker_id = NULL, "
                        "lease_expires_at = NULL, run_at = ?, due = ?, error = ?, "
                        "context = coalesce(?, context), logs = coalesce(?, logs) "
                        "WHERE id = ? AND status = 'running' AND worker_id = ?",
                        (o.run_at, o.run_at if o.run_at is not None else now, error, context,
                         logs, o.id, worker_id))
                    wake = wake or cursor.rowcount > 0
                else:
                    result = None if o.result is None else _dumps(o.result)
                    cancelled = o.status is TaskStatus.CANCELLED
                    reason = (o.cancel_reason or "cancelled") if cancelled else None
                    cursor = conn.execute(
                        "UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, "
                        "worker_id = NULL, lease_expires_at = NULL, "
                        "cancel_reason = CASE WHEN ? THEN coalesce(?, cancel_reason, ?) "
                        "ELSE cancel_reason END, "
                        "context = coalesce(?, context), logs = coalesce(?, logs) "
                        "WHERE id = ? AND status = 'running' AND worker_id = ?",
                        (o.status.value, result, error, now, cancelled, o.cancel_reason,
                         reason, context, logs, o.id, worker_id))
                    if cursor.rowcount and not (o.status is TaskStatus.SUCCEEDED
                                                and auto_removed(conn, o.id)):
                        add_fanout(conn, o.id, o.status)
                if cursor.rowcount:
                    accepted.append(o.id)
            fanout = fanout_step(conn, now)
        fanout.released = fanout.released or wake
        return accepted, fanout

    async def _fanout_done(self, fanout: FanoutResult, now: float, *, wake: bool) -> None:
        """Finish noted fan-outs, one transaction per chunk, then wake workers if needed."""
        wake = wake or fanout.released
        while fanout.more:
            started = time.monotonic()
            fanout = await self._run(self._fanout_sync, now)
            wake = wake or fanout.released
            await anyio.sleep(time.monotonic() - started)  # other writers' turn
        if wake:
            self._notifier.send(b"w")

    def _fanout_sync(self, conn: sqlite3.Connection, now: float) -> FanoutResult:
        with self._tx(conn):
            return fanout_step(conn, now)

    async def reclaim_expired(self, *, now: float | None = None) -> builtins.list[str]:
        now = self.clock() if now is None else now
        ids, fanout = await self._run(self._reclaim_sync, now)
        await self._fanout_done(fanout, now, wake=bool(ids))
        return ids

    def _reclaim_sync(self, conn: sqlite3.Connection, now: float
                      ) -> tuple[builtins.list[str], FanoutResult]:
        error = _dumps(TaskErrorInfo("LeaseExpired", LOST_WORKER).to_dict())
        with self._tx(conn):
            rows = conn.execute(
                "SELECT id, attempts, max_retries, cancel_requested FROM tasks "
                "WHERE status = 'running' AND lease_expires_at <= ?", (now,)).fetchall()
            for task_id, attempts, max_retries, cancel_requested in rows:
                if cancel_requested:
                    status = TaskStatus.CANCELLED
                elif attempts <= max_retries:
                    conn.execute(
                        "UPDATE tasks SET status = 'pending', worker_id = NULL, "
                        "lease_expires_at = NULL, run_at = NULL, due = ?, error = ? "
                        "WHERE id = ?", (now, error, task_id))
                    continue
                else:
                    status = TaskStatus.FAILED
                conn.execute(
                    "UPDATE tasks SET status = ?, worker_id = NULL, lease_expires_at = NULL, "
                    "finished_at = ?, error = ?, cancel_reason = coalesce(cancel_reason, ?) "
                    "WHERE id = ?",
                    (status.value, now, error,
                     "cancelled" if status is TaskStatus.CANCELLED else None, task_id))
                add_fanout(conn, task_id, status)
            fanout = fanout_step(conn, now)
        return [row[0] for row in rows], fanout

    async def next_due_at(self, *, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now

        def read(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT min(due) FROM tasks WHERE status = 'pending' AND "
                               "waiting = 0").fetchone()
            return None if row[0] is None else max(float(row[0]), now) if row[0] > now else now

        return await self._run(read)

    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        await self._notifier.listen(on_work, on_cancel)

    # -- operating ------------------------------------------------------------------------
    async def cancel(self, task_id: str, reason: str, *, now: float | None = None) -> TaskRecord:
        now = self.clock() if now is None else now

        def cancel(conn: sqlite3.Connection) -> tuple[TaskRecord, FanoutResult]:
            fanout = FanoutResult()
            with self._tx(conn):
                row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
                if row is None:
                    raise TaskNotFound(task_id)
                if row[0] == "pending":
                    conn.execute("UPDATE tasks SET status = 'cancelled', cancel_reason = ?, "
                                 "finished_at = ? WHERE id = ?", (reason, now, task_id))
                    add_fanout(conn, task_id, TaskStatus.CANCELLED)
                    fanout = fanout_step(conn, now)
                elif row[0] == "running":
                    conn.execute("UPDATE tasks SET cancel_requested = 1, cancel_reason = ? "
                                 "WHERE id = ?", (reason, task_id))
                return self._get_sync(conn, task_id), fanout

        record, fanout = await self._run(cancel)
        await self._fanout_done(fanout, now, wake=False)
        if record.status is TaskStatus.RUNNING:
            self._notifier.send(b"c:" + task_id.encode())
        return record

    async def requeue(self, task_id: str, *, now: float | None = None) -> TaskRecord:
        now = self.clock() if now is None else now

        def requeue(conn: sqlite3.Connection) -> tuple[TaskRecord, FanoutResult]:
            with self._tx(conn):
                row = conn.execute("SELECT status, parents, unique_key FROM tasks WHERE id = ?",
                                   (task_id,)).fetchone()
                if row is None:
                    raise TaskNotFound(task_id)
                check_requeue(conn, task_id, *row)
                revive(conn, task_id, now)
                add_fanout(conn, task_id, TaskStatus.PENDING)
                fanout = fanout_step(conn, now)
                return self._get_sync(conn, task_id), fanout

        record, fanout = await self._run(requeue)
        await self._fanout_done(fanout, now, wake=True)
        return record

    @staticmethod
    def _get_sync(conn: sqlite3.Connection, task_id: str) -> TaskRecord:
        row = conn.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return read_row(row)

    async def get(self, task_id: str) -> TaskRecord | None:
        def get(conn: sqlite3.Connection) -> TaskRecord | None:
            try:
                return self._get_sync(conn, task_id)
            except TaskNotFound:
                return None

        return await self._run(get)

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> builtins.list[TaskRecord]:
        def read(conn: sqlite3.Connection) -> builtins.list[TaskRecord]:
            where, params = ("WHERE status = ?", [status.value]) if status else ("", [])
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM tasks {where} ORDER BY created_at DESC, seq DESC "
                f"LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
            return [read_row(row) for row in rows]

        return await self._run(read)

    async def stats(self, *, now: float | None = None) -> QueueStats:
        now = self.clock() if now is None else now

        def read(conn: sqlite3.Connection) -> QueueStats:
            counts = dict.fromkeys(TaskStatus, 0)
            for status, count in conn.execute(
                    "SELECT status, count(*) FROM tasks GROUP BY status"):
                counts[status_or_failed(status)] += count
            oldest = conn.execute(
                "SELECT min(created_at) FROM tasks WHERE status = 'pending' AND waiting = 0 "
                "AND due <= ?", (now,)).fetchone()[0]
            if not isinstance(oldest, (int, float)):
                oldest = None  # only rows whose created_at is not a number
            return QueueStats(counts=counts, oldest_pending_at=oldest)

        return await self._run(read)

    async def purge(self, statuses: Collection[TaskStatus], *,
                    finished_before: float | None = None) -> int:
        chosen = [s.value for s in statuses if s.is_terminal]
        if not chosen:
            return 0

        def purge(conn: sqlite3.Connection) -> int:
            marks = ", ".join("?" * len(chosen))
            where = f"status IN ({marks})"
            params: builtins.list[Any] = list(chosen)
            if finished_before is not None:
                where += " AND finished_at < ?"
                params.append(finished_before)
            with self._tx(conn):
                conn.execute(f"DELETE FROM deps WHERE parent_id IN (SELECT id FROM tasks WHERE "
                             f"{where}) OR child_id IN (SELECT id FROM tasks WHERE {where})",
                             params + params)
                return conn.execute(f"DELETE FROM tasks WHERE {where}", params).rowcount

        return await self._run(purge)

    # -- workers --------------------------------------------------------------------------
    async def register_worker(self, info: WorkerInfo) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO workers (id, info) VALUES (?, ?)",
                         (info.id, _dumps(info.to_dict())))

        await self._run(write)

    async def unregister_worker(self, worker_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

        await self._run(delete)

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        def read(conn: sqlite3.Connection) -> builtins.list[WorkerInfo]:
            rows = conn.execute("SELECT id, info FROM workers ORDER BY id").fetchall()
            return read_workers(rows)

        return await self._run(read)

    # -- clearing -------------------------------------------------------------------------
    async def delete_pending(self) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            pending = "SELECT id FROM tasks WHERE status = 'pending'"
            with self._tx(conn):
                conn.execute(f"DELETE FROM deps WHERE parent_id IN ({pending}) "
                             f"OR child_id IN ({pending})")
                return conn.execute("DELETE FROM tasks WHERE status = 'pending'").rowcount

        return await self._run(delete)
