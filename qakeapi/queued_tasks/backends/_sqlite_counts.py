"""The SQLite queue's counts by status (``task_counts``): exact on a queue of any size, at the
cost of a few statements per transaction instead of a trigger per changed row.

Each task row holds ``counted_as``, the status ``task_counts`` counts it under. The
statements that move tasks in bulk (enqueue, claim, finish) set it together with the status
and add their changes up, one UPSERT per status and transaction (:func:`add_counts`). Any
other change of status leaves ``counted_as`` behind: the rarer paths (cancelling, retrying,
lease expiry, fan-outs, quarantining a row that can't be read) on purpose, and any program
writing the file past the queue (an operator's ``sqlite3`` session, a restored row). Those
rows, normally none, are the partial index ``tasks_miscounted``: :func:`read_counts` adds
them in, and :func:`settle` counts them for good at the start of each write transaction. A
deleted row is taken off by the ``task_counts_delete`` trigger, whoever deletes it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["COUNTS_SCHEMA", "add_counts", "read_counts", "settle"]

_MISCOUNTED = "counted_as IS NOT status"

COUNTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS task_counts (
    status TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_miscounted ON tasks (status, counted_as) WHERE {_MISCOUNTED};
CREATE TRIGGER IF NOT EXISTS task_counts_delete AFTER DELETE ON tasks
    WHEN old.counted_as IS NOT NULL BEGIN
    INSERT INTO task_counts (status, n) VALUES (old.counted_as, -1)
        ON CONFLICT (status) DO UPDATE SET n = n - 1;
END;
"""

_MISCOUNTED_ROWS = f"FROM tasks INDEXED BY tasks_miscounted WHERE {_MISCOUNTED}"
_CHANGES = (f"SELECT status, count(*) {_MISCOUNTED_ROWS} GROUP BY status UNION ALL "
            f"SELECT counted_as, -count(*) {_MISCOUNTED_ROWS} AND counted_as IS NOT NULL "
            f"GROUP BY counted_as")
"""(status, tasks to add) for the changes not counted yet."""


def add_counts(conn: sqlite3.Connection, changes: Mapping[Any, int]) -> None:
    """Add ``changes`` (status -> number of tasks, negative to take off) to the counts."""
    _add(conn, changes.items())


def _add(conn: sqlite3.Connection, changes: Iterable[tuple[Any, int]]) -> None:
    conn.executemany(
        "INSERT INTO task_counts (status, n) VALUES (?, ?) "
        "ON CONFLICT (status) DO UPDATE SET n = n + excluded.n",
        [(status, n) for status, n in changes if n])


def settle(conn: sqlite3.Connection) -> None:
    """Count the tasks whose status changed uncounted; inside a write transaction, before
    statements that count their own changes (they take a task's status as counted)."""
    if conn.execute(f"SELECT 1 {_MISCOUNTED_ROWS} LIMIT 1").fetchone() is None:
        return
    _add(conn, conn.execute(_CHANGES).fetchall())
    conn.execute(f"UPDATE tasks INDEXED BY tasks_miscounted SET counted_as = status "
                 f"WHERE {_MISCOUNTED}")


def read_counts(conn: sqlite3.Connection) -> Counter[Any]:
    """Tasks by stored status: the kept counts plus the changes not counted yet, read in
    one statement (one snapshot). A count that is not an integer (the table written past
    the queue) reads as none."""
    counts: Counter[Any] = Counter()
    for status, n in conn.execute(
            f"SELECT status, n FROM task_counts WHERE typeof(n) = 'integer' UNION ALL "
            f"{_CHANGES}"):
        counts[status] += n
    return counts
