"""SQLite queue files as older qakeapi wrote them, made from one of the current schema (the
upgrade tests open them with the current qakeapi)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from qakeapi.queued_tasks.backends._sqlite_schema import SCHEMA_VERSION

__all__ = ["downgrade"]

SCHEMA_4 = """
DROP INDEX tasks_miscounted; DROP INDEX tasks_pending_due; DROP INDEX tasks_running_lease;
DROP INDEX tasks_ended; DROP INDEX tasks_pending_oldest; DROP TRIGGER task_counts_delete;
ALTER TABLE tasks DROP COLUMN counted_as;
CREATE INDEX tasks_due ON tasks (status, waiting, priority DESC, due, seq);
CREATE INDEX tasks_lease ON tasks (status, lease_expires_at);
CREATE INDEX tasks_finished ON tasks (status, finished_at);
CREATE INDEX tasks_oldest ON tasks (status, waiting, created_at, due);
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (status, n) VALUES (new.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks
    WHEN old.status IS NOT new.status BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status;
    INSERT INTO task_counts (status, n) VALUES (new.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
PRAGMA user_version = 4;
"""
"""Schema 5 -> 4: no ``counted_as``, indexes over every task, triggers counting each
changed row."""
SCHEMA_3 = (
    "DROP TRIGGER task_counts_insert; DROP TRIGGER task_counts_delete; "
    "DROP TRIGGER task_counts_update; DROP TABLE task_counts; DROP INDEX tasks_oldest; "
    "DROP INDEX tasks_named; DROP INDEX tasks_named_listed; PRAGMA user_version = 3;")
"""Schema 4 -> 3: no counts, no listing indexes."""
SCHEMA_2 = "ALTER TABLE tasks DROP COLUMN auto_remove; PRAGMA user_version = 2;"
"""Schema 3 -> 2: no ``auto_remove``."""

_DOWN = {5: SCHEMA_4, 4: SCHEMA_3, 3: SCHEMA_2}


def downgrade(path: Path, version: int) -> None:
    """Turn the queue at ``path`` (current schema) into one of schema ``version``."""
    assert SCHEMA_VERSION == 5, "add the step down from the new schema"
    with sqlite3.connect(path) as conn:
        for step in range(SCHEMA_VERSION, version, -1):
            conn.executescript(_DOWN[step])
