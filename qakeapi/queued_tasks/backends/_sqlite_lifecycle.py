"""A task's life in the SQLite queue: the statements that store, claim, renew, finish,
reclaim, cancel and requeue tasks.

Each function takes the connection and runs in the storage's worker thread; those that
change state are one ``BEGIN IMMEDIATE`` transaction, and the fan-out work they note is
finished by the caller through :func:`fanout_chunk` (see :mod:`._sqlite_deps`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence

from ...exceptions import MissingParentError, TaskNotFound
from ...types import TaskErrorInfo, TaskOutcome, TaskRecord, TaskStatus
from .._serialization import dumps
from ._base import LOST_WORKER, RenewResult
from ._sqlite_connect import transaction
from ._sqlite_counts import add_counts, settle
from ._sqlite_deps import (
    CASCADE_JOB,
    FanoutResult,
    add_fanout,
    add_fanouts,
    auto_removed,
    check_requeue,
    fanout_step,
    revive,
)
from ._sqlite_schema import COLUMNS, INSERT_SQL, claimed_records, read_row, row_from_record

__all__ = ["cancel", "claim", "enqueue", "fanout_chunk", "finish", "next_due", "read_task",
           "reclaim", "renew", "requeue", "save_progress"]


@contextlib.contextmanager
def _counting(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that may change statuses: it first counts the changes earlier
    ones left uncounted (see :mod:`._sqlite_counts`)."""
    with transaction(conn):
        settle(conn)
        yield


def read_task(conn: sqlite3.Connection, task_id: str) -> TaskRecord:
    row = conn.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        raise TaskNotFound(task_id)
    return read_row(row)


def enqueue(conn: sqlite3.Connection, records: Sequence[TaskRecord],
            now: float) -> list[TaskRecord]:
    out: list[TaskRecord] = []
    added: Counter[str] = Counter()
    with _counting(conn):
        for record in records:
            if record.unique_key is not None:
                row = conn.execute(
                    f"SELECT {COLUMNS} FROM tasks WHERE unique_key = ? AND status IN "
                    f"('pending', 'running')", (record.unique_key,)).fetchone()
                if row is not None:
                    out.append(read_row(row))
                    continue
            waiting, record = _against_parents(conn, record, now)
            conn.execute(INSERT_SQL, row_from_record(record, waiting))
            if record.parents:
                conn.executemany(
                    "INSERT OR IGNORE INTO deps (parent_id, child_id) VALUES (?, ?)",
                    [(p, record.id) for p in record.parents])
            added[record.status.value] += 1
            out.append(record)
        add_counts(conn, added)
    return out


def _against_parents(conn: sqlite3.Connection, record: TaskRecord,
                     now: float) -> tuple[int, TaskRecord]:
    """How many parents ``record`` waits on, and the record to store: cancelled when a
    parent already failed or was cancelled."""
    waiting = 0
    dead: tuple[str, str] | None = None
    for parent_id in record.parents:
        found = conn.execute("SELECT status FROM tasks WHERE id = ?", (parent_id,)).fetchone()
        if found is None:
            raise MissingParentError(f"parent task {parent_id!r} of {record.name} does not exist")
        if found[0] in ("failed", "cancelled"):
            dead = (parent_id, found[0])
        elif found[0] != "succeeded":
            waiting += 1
    if dead is not None:
        verb = "failed" if dead[1] == "failed" else "was cancelled"
        record = TaskRecord.from_dict({
            **record.to_dict(), "status": "cancelled", "finished_at": now,
            "cancel_reason": f"parent {dead[0]} {verb}"})
    return waiting, record


def claim(conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float,
          now: float) -> list[TaskRecord]:
    with _counting(conn):
        rows = conn.execute(
            f"UPDATE tasks SET status = 'running', counted_as = 'running', attempts = "
            f"CASE WHEN typeof(attempts) = 'integer' THEN attempts + 1 ELSE attempts END, "
            f"started_at = ?, worker_id = ?, lease_expires_at = ? WHERE seq IN ("
            f"SELECT seq FROM tasks WHERE status = 'pending' AND waiting = 0 AND due <= ? "
            f"ORDER BY priority DESC, due, seq LIMIT ?) RETURNING priority, due, seq, "
            f"{COLUMNS}",
            (now, worker_id, now + lease_seconds, now, limit)).fetchall()
        add_counts(conn, {"pending": -len(rows), "running": len(rows)})
        claimed = claimed_records(conn, rows, limit, now, CASCADE_JOB)
        fanout_step(conn, now)
        return claimed


def renew(conn: sqlite3.Connection, worker_id: str, ids: list[str], lease_seconds: float,
          now: float) -> RenewResult:
    result = RenewResult()
    with transaction(conn):
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


def save_progress(conn: sqlite3.Connection, worker_id: str, task_id: str,
                  context: dict[str, object], logs: list[str]) -> None:
    conn.execute("UPDATE tasks SET context = ?, logs = ? WHERE id = ? AND "
                 "status = 'running' AND worker_id = ?",
                 (dumps(context), dumps(logs), task_id, worker_id))


def finish(conn: sqlite3.Connection, worker_id: str, outcomes: Sequence[TaskOutcome],
           now: float) -> tuple[list[str], FanoutResult]:
    accepted: list[str] = []
    ended: Counter[str] = Counter()
    terminal: list[tuple[str, TaskStatus]] = []
    with _counting(conn):
        for o in outcomes:
            stored = _store_outcome(conn, worker_id, o, now)
            if not stored:
                continue
            accepted.append(o.id)
            ended[o.status.value] += 1
            if o.status is TaskStatus.PENDING or (
                    o.status is TaskStatus.SUCCEEDED and stored[0][0]
                    and auto_removed(conn, o.id)):
                continue
            terminal.append((o.id, o.status))
        add_fanouts(conn, terminal)
        ended["running"] -= len(accepted)
        add_counts(conn, ended)
        fanout = fanout_step(conn, now)
    fanout.released = fanout.released or ended["pending"] > 0
    return accepted, fanout


def _store_outcome(conn: sqlite3.Connection, worker_id: str, o: TaskOutcome,
                   now: float) -> list[tuple[int]]:
    """The outcome of a task ``worker_id`` holds, stored: ``[(auto_remove,)]``, or ``[]``
    when the worker no longer holds it."""
    error = None if o.error is None else dumps(o.error.to_dict())
    context = None if o.context is None else dumps(o.context)
    logs = None if o.logs is None else dumps(list(o.logs))
    if o.status is TaskStatus.PENDING:
        return conn.execute(
            "UPDATE tasks SET status = 'pending', counted_as = 'pending', worker_id = NULL, "
            "lease_expires_at = NULL, run_at = ?, due = ?, error = ?, "
            "context = coalesce(?, context), logs = coalesce(?, logs) "
            "WHERE id = ? AND status = 'running' AND worker_id = ? RETURNING auto_remove",
            (o.run_at, o.run_at if o.run_at is not None else now, error, context, logs, o.id,
             worker_id)).fetchall()
    result = None if o.result is None else dumps(o.result)
    cancelled = o.status is TaskStatus.CANCELLED
    reason = (o.cancel_reason or "cancelled") if cancelled else None
    return conn.execute(
        "UPDATE tasks SET status = ?, counted_as = ?, result = ?, error = ?, finished_at = ?, "
        "worker_id = NULL, lease_expires_at = NULL, "
        "cancel_reason = CASE WHEN ? THEN coalesce(?, cancel_reason, ?) ELSE cancel_reason END, "
        "context = coalesce(?, context), logs = coalesce(?, logs) "
        "WHERE id = ? AND status = 'running' AND worker_id = ? RETURNING auto_remove",
        (o.status.value, o.status.value, result, error, now, cancelled, o.cancel_reason, reason,
         context, logs, o.id, worker_id)).fetchall()


def fanout_chunk(conn: sqlite3.Connection, now: float) -> FanoutResult:
    with _counting(conn):
        return fanout_step(conn, now)


def reclaim(conn: sqlite3.Connection, now: float) -> tuple[list[str], FanoutResult]:
    error = dumps(TaskErrorInfo("LeaseExpired", LOST_WORKER).to_dict())
    with _counting(conn):
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


def next_due(conn: sqlite3.Connection, now: float) -> float | None:
    row = conn.execute("SELECT min(due) FROM tasks WHERE status = 'pending' AND "
                       "waiting = 0").fetchone()
    return None if row[0] is None else max(float(row[0]), now) if row[0] > now else now


def cancel(conn: sqlite3.Connection, task_id: str, reason: str,
           now: float) -> tuple[TaskRecord, FanoutResult]:
    fanout = FanoutResult()
    with _counting(conn):
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
        return read_task(conn, task_id), fanout


def requeue(conn: sqlite3.Connection, task_id: str,
            now: float) -> tuple[TaskRecord, FanoutResult]:
    with _counting(conn):
        row = conn.execute("SELECT status, parents, unique_key FROM tasks WHERE id = ?",
                           (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        check_requeue(conn, task_id, *row)
        revive(conn, task_id, now)
        add_fanout(conn, task_id, TaskStatus.PENDING)
        fanout = fanout_step(conn, now)
        return read_task(conn, task_id), fanout
