"""What operators and dashboards ask of the SQLite queue: reading tasks, counting them,
purging finished ones, clearing pending ones, and the table of live workers."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...exceptions import TaskNotFound
from ...types import QueueStats, TaskRecord, TaskStatus, WorkerInfo
from .._serialization import dumps
from ._paging import Listing, Position, SortValue
from ._rows import read_workers, status_or_failed
from ._sqlite_connect import transaction
from ._sqlite_counts import read_counts
from ._sqlite_lifecycle import read_task
from ._sqlite_schema import COLUMNS, read_row

__all__ = ["change_marker", "delete_pending", "find_task", "list_tasks", "list_workers",
           "page_rows", "purge", "read_stats", "register_worker", "unregister_worker"]


def find_task(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    try:
        return read_task(conn, task_id)
    except TaskNotFound:
        return None


def list_tasks(conn: sqlite3.Connection, status: TaskStatus | None, limit: int,
               offset: int) -> list[TaskRecord]:
    where, params = ("WHERE status = ?", [status.value]) if status else ("", [])
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM tasks {where} ORDER BY created_at DESC, seq DESC "
        f"LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
    return [read_row(row) for row in rows]


_PAGE_WHERE = {(False, False): "", (True, False): "status = ? AND ",
               (False, True): "name = ? AND ", (True, True): "name = ? AND status = ? AND "}


def page_rows(conn: sqlite3.Connection, request: Listing, position: Position | None
              ) -> list[tuple[SortValue, SortValue, TaskRecord]]:
    """Up to ``limit + 1`` rows from ``position`` (see :mod:`._paging`), read through the
    index that leads with the filter's columns and ends ``(created_at, seq)``."""
    params: list[Any] = [request.name] if request.name else []
    if request.status:
        params.append(request.status.value)
    where = _PAGE_WHERE[request.status is not None, request.name is not None]
    newer = position is not None and position.newer
    if position is None:
        where += "1"
    else:
        where += "(created_at, seq) > (?, ?)" if newer else "(created_at, seq) < (?, ?)"
        params += [position.created_at, position.tiebreak]
    order = "ASC" if newer else "DESC"
    rows = conn.execute(
        f"SELECT created_at, seq, {COLUMNS} FROM tasks WHERE {where} "
        f"ORDER BY created_at {order}, seq {order} LIMIT ?",
        [*params, request.limit + 1]).fetchall()
    return [(row[0], row[1], read_row(row[2:])) for row in rows]


def list_children(conn: sqlite3.Connection, task_id: str, limit: int) -> list[TaskRecord]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM tasks WHERE id IN (SELECT child_id FROM deps WHERE "
        f"parent_id = ? LIMIT ?) ORDER BY created_at, seq", (task_id, limit)).fetchall()
    return [read_row(row) for row in rows]


def read_stats(conn: sqlite3.Connection, now: float) -> QueueStats:
    counts = dict.fromkeys(TaskStatus, 0)
    for status, count in read_counts(conn).items():
        counts[status_or_failed(status)] += count
    counts = {status: max(0, count) for status, count in counts.items()}
    first = conn.execute(
        "SELECT created_at FROM tasks WHERE status = 'pending' AND waiting = 0 AND due <= ? "
        "ORDER BY created_at LIMIT 1", (now,)).fetchone()
    oldest = None if first is None else first[0]
    if not isinstance(oldest, (int, float)):
        oldest = None  # only rows whose created_at is not a number
    return QueueStats(counts=counts, oldest_pending_at=oldest)


def purge(conn: sqlite3.Connection, statuses: Sequence[str],
          finished_before: float | None) -> int:
    where = f"status IN ({', '.join('?' * len(statuses))})"
    params: list[Any] = list(statuses)
    if finished_before is not None:
        where += " AND finished_at < ?"
        params.append(finished_before)
    with transaction(conn):
        conn.execute(f"DELETE FROM deps WHERE parent_id IN (SELECT id FROM tasks WHERE "
                     f"{where}) OR child_id IN (SELECT id FROM tasks WHERE {where})",
                     params + params)
        return conn.execute(f"DELETE FROM tasks WHERE {where}", params).rowcount


def delete_pending(conn: sqlite3.Connection) -> int:
    pending = "SELECT id FROM tasks WHERE status = 'pending'"
    with transaction(conn):
        conn.execute(f"DELETE FROM deps WHERE parent_id IN ({pending}) "
                     f"OR child_id IN ({pending})")
        return conn.execute("DELETE FROM tasks WHERE status = 'pending'").rowcount


def register_worker(conn: sqlite3.Connection, info: WorkerInfo) -> None:
    conn.execute("INSERT OR REPLACE INTO workers (id, info) VALUES (?, ?)",
                 (info.id, dumps(info.to_dict())))


def unregister_worker(conn: sqlite3.Connection, worker_id: str) -> None:
    conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))


def list_workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    return read_workers(conn.execute("SELECT id, info FROM workers ORDER BY id").fetchall())


def change_marker(conn: sqlite3.Connection) -> tuple[int, int]:
    """``PRAGMA data_version`` (moves when another connection commits; read from the WAL
    index, no page of the file) with this connection's own row changes."""
    return conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes
