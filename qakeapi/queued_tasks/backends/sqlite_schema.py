"""Schema of the SQLite queue, and the mapping between rows and task records."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ...exceptions import CorruptTaskError
from ...types import TaskErrorInfo, TaskRecord, TaskStatus

__all__ = ["COLUMNS", "SCHEMA", "SCHEMA_VERSION", "record_from_row", "row_from_record"]

SCHEMA_VERSION = 2

SCHEMA = """
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
    logs TEXT
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (status, waiting, priority DESC, due, seq);
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (status, lease_expires_at);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at, seq);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (status, finished_at);
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
"""

COLUMNS = (
    "id, name, status, priority, attempts, max_retries, timeout, created_at, started_at, "
    "finished_at, run_at, worker_id, lease_expires_at, cancel_reason, cancel_requested, "
    "unique_key, parents, args, kwargs, result, error, context, logs"
)

_INSERT_COLUMNS = COLUMNS + ", due, waiting"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def row_from_record(record: TaskRecord, waiting: int) -> tuple[Any, ...]:
    return (
        record.id, record.name, record.status.value, record.priority, record.attempts,
        record.max_retries, record.timeout, record.created_at, record.started_at,
        record.finished_at, record.run_at, record.worker_id, record.lease_expires_at,
        record.cancel_reason, int(record.cancel_requested), record.unique_key,
        _dumps(list(record.parents)), _dumps(list(record.args)), _dumps(record.kwargs),
        None if record.result is None else _dumps(record.result),
        None if record.error is None else _dumps(record.error.to_dict()),
        _dumps(record.context), _dumps(list(record.logs)),
        record.run_at if record.run_at is not None else record.created_at, waiting,
    )


INSERT_SQL = (
    f"INSERT INTO tasks ({_INSERT_COLUMNS}) VALUES ({', '.join('?' * 25)})"
)


def record_from_row(row: sqlite3.Row | tuple[Any, ...]) -> TaskRecord:
    """A record from a row selected with COLUMNS; CorruptTaskError if it can't be read."""
    try:
        (task_id, name, status, priority, attempts, max_retries, timeout, created_at,
         started_at, finished_at, run_at, worker_id, lease_expires_at, cancel_reason,
         cancel_requested, unique_key, parents, args, kwargs, result, error, context,
         logs) = row
        return TaskRecord(
            id=task_id, name=name, status=TaskStatus(status), priority=priority,
            attempts=attempts, max_retries=max_retries, timeout=timeout,
            created_at=created_at, started_at=started_at, finished_at=finished_at,
            run_at=run_at, worker_id=worker_id, lease_expires_at=lease_expires_at,
            cancel_reason=cancel_reason, cancel_requested=bool(cancel_requested),
            unique_key=unique_key, parents=tuple(json.loads(parents)),
            args=json.loads(args), kwargs=json.loads(kwargs),
            result=None if result is None else json.loads(result),
            error=None if error is None else TaskErrorInfo.from_dict(json.loads(error)),
            context=json.loads(context) if context else {},
            logs=json.loads(logs) if logs else [],
        )
    except (ValueError, TypeError) as exc:
        task = row[0] if row else "?"
        raise CorruptTaskError(f"task {task} in the SQLite queue is corrupt: {exc}") from exc
