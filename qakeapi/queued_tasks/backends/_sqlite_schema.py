"""Schema of the SQLite queue, and the mapping between rows and task records."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from ...exceptions import CorruptTaskError
from ...types import TaskRecord
from .._serialization import dumps
from ._rows import corrupt, corrupt_error_info, decode_record, read_record, safe_text
from ._sqlite_counts import COUNTS_SCHEMA

__all__ = ["ADD_AUTO_REMOVE", "COLUMNS", "COUNT_TASKS", "INSERT_SQL", "SCHEMA", "SCHEMA_VERSION",
           "TO_SCHEMA_5", "claimed_records", "read_row", "record_from_row", "row_from_record",
           "text_or_escaped"]

logger = logging.getLogger("qakeapi.queue")

SCHEMA_VERSION = 5

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL,
    waiting INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 0,
    timeout REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    run_at REAL,
    worker_id TEXT,
    lease_expires_at REAL,
    cancel_reason TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    unique_key TEXT,
    parents TEXT NOT NULL DEFAULT '[]',
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    result TEXT,
    error TEXT,
    context TEXT,
    logs TEXT,
    auto_remove INTEGER NOT NULL DEFAULT 0,
    counted_as TEXT
);
CREATE INDEX IF NOT EXISTS tasks_pending_due ON tasks (status, waiting, priority DESC, due, seq)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS tasks_running_lease ON tasks (status, lease_expires_at)
    WHERE status = 'running';
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at, seq);
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (status, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_listed ON tasks (status, created_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_unique ON tasks (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running');
CREATE TABLE IF NOT EXISTS deps (
    parent_id TEXT NOT NULL,
    child_id TEXT NOT NULL,
    PRIMARY KEY (parent_id, child_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deps_child ON deps (child_id);
CREATE TABLE IF NOT EXISTS fanout (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    after TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_pending_oldest ON tasks (status, waiting, created_at, due)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS tasks_named ON tasks (name, created_at, seq);
CREATE INDEX IF NOT EXISTS tasks_named_listed ON tasks (name, status, created_at, seq);
{COUNTS_SCHEMA}"""

COLUMNS = (
    "id, name, status, priority, attempts, max_retries, timeout, created_at, started_at, "
    "finished_at, run_at, worker_id, lease_expires_at, cancel_reason, cancel_requested, "
    "unique_key, parents, args, kwargs, result, error, context, logs, auto_remove"
)

_INSERT_COLUMNS = COLUMNS + ", due, waiting, counted_as"


def row_from_record(record: TaskRecord, waiting: int) -> tuple[Any, ...]:
    return (
        record.id, record.name, record.status.value, record.priority, record.attempts,
        record.max_retries, record.timeout, record.created_at, record.started_at,
        record.finished_at, record.run_at, record.worker_id, record.lease_expires_at,
        record.cancel_reason, int(record.cancel_requested), record.unique_key,
        dumps(list(record.parents)), dumps(list(record.args)), dumps(record.kwargs),
        None if record.result is None else dumps(record.result),
        None if record.error is None else dumps(record.error.to_dict()),
        dumps(record.context), dumps(list(record.logs)), int(record.auto_remove),
        record.run_at if record.run_at is not None else record.created_at, waiting,
        record.status.value,
    )


INSERT_SQL = (
    f"INSERT INTO tasks ({_INSERT_COLUMNS}) VALUES ({', '.join('?' * 27)})"
)


_NAMES = tuple(name.strip() for name in COLUMNS.split(","))
_JSON_COLUMNS = ("parents", "args", "kwargs", "result", "error", "context", "logs")


def record_from_row(row: sqlite3.Row | tuple[Any, ...]) -> TaskRecord:
    """A record from a row selected with COLUMNS; CorruptTaskError if it can't be read."""
    return decode_record(dict(zip(_NAMES, row, strict=True)), _JSON_COLUMNS)


def read_row(row: sqlite3.Row | tuple[Any, ...]) -> TaskRecord:
    """Like :func:`record_from_row`, but a row that can't be read gives a placeholder."""
    return read_record(dict(zip(_NAMES, row, strict=True)), _JSON_COLUMNS)


ADD_AUTO_REMOVE = "ALTER TABLE tasks ADD COLUMN auto_remove INTEGER NOT NULL DEFAULT 0"
"""Schema 2 -> 3."""
TO_SCHEMA_5 = (
    "DROP TRIGGER IF EXISTS task_counts_insert; DROP TRIGGER IF EXISTS task_counts_update; "
    "DROP TRIGGER IF EXISTS task_counts_delete; DROP INDEX IF EXISTS tasks_due; "
    "DROP INDEX IF EXISTS tasks_lease; DROP INDEX IF EXISTS tasks_finished; "
    "DROP INDEX IF EXISTS tasks_oldest; ALTER TABLE tasks ADD COLUMN counted_as TEXT; "
    "UPDATE tasks SET counted_as = status"
)
"""Schema 4 (or older) -> 5: the triggers that counted every changed row and the indexes
that held every task only to find the pending, running or finished ones give way to
``counted_as`` (see :mod:`._sqlite_counts`) and partial indexes."""
COUNT_TASKS = ("DELETE FROM task_counts; "
               "INSERT INTO task_counts (status, n) SELECT status, count(*) FROM tasks "
               "GROUP BY status")
"""On every upgrade: the counts by status, from the rows, for a queue made by an older
qakeapi (schema 3 had none)."""


def text_or_escaped(data: bytes) -> str:
    """SQLite text as str; bytes that are not UTF-8 kept as surrogate escapes (then the
    row reads as corrupt) instead of failing the whole query."""
    return data.decode("utf-8", "surrogateescape")


_UNKNOWN_STATUS = (
    "SELECT seq, id FROM tasks WHERE status < 'cancelled' OR status > 'succeeded' "
    "OR (status > 'cancelled' AND status < 'failed') OR (status > 'failed' AND status < 'pending') "
    "OR (status > 'pending' AND status < 'running') "
    "OR (status > 'running' AND status < 'succeeded')"
)
"""Rows whose status is no task status: one index seek per gap between the five."""


def claimed_records(conn: sqlite3.Connection, rows: list[Any], limit: int, now: float,
                    cascade: str) -> list[TaskRecord]:
    """The records of the rows a claim took (``priority, due, seq, COLUMNS``), in claim
    order. A row that can't be read is recorded failed instead, its descendants cancelled
    with ``cascade``; so is, when the claim took fewer than ``limit``, any row whose status
    is no task status (it is never due, so no claim would take it)."""
    if len(rows) < limit:
        for seq, task_id in conn.execute(_UNKNOWN_STATUS).fetchall():
            unknown = ValueError("its status is not a task status")
            _fail(conn, seq, task_id, corrupt(task_id, unknown), now, cascade)
    readable: list[tuple[tuple[int, float, int], TaskRecord]] = []
    for row in rows:
        try:
            record = record_from_row(row[3:])
        except CorruptTaskError as exc:
            _fail(conn, row[2], row[3], exc, now, cascade)
            continue
        readable.append(((-record.priority, row[1], row[2]), record))
    readable.sort(key=lambda item: item[0])
    return [record for _, record in readable]


def _fail(conn: sqlite3.Connection, seq: int, task_id: Any, exc: CorruptTaskError,
          now: float, cascade: str) -> None:
    logger.error("%s: recorded failed", exc)
    conn.execute(
        "UPDATE tasks SET status = 'failed', finished_at = ?, worker_id = NULL, "
        "lease_expires_at = NULL, error = ? WHERE seq = ?",
        (now, dumps(corrupt_error_info(exc).to_dict()), seq))
    if isinstance(task_id, str) and safe_text(task_id) == task_id:
        conn.execute(cascade, (task_id, f"parent {task_id} failed", now))
