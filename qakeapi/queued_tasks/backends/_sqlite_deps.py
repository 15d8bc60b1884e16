"""Dependencies in the SQLite queue: releasing, cancelling and reviving children in chunks.

A state change that fans out to the children of a task (success releases them, failure or
cancellation cancels them, a requeue revives those cancelled because of it) writes a row
into ``fanout`` in its own transaction. :func:`fanout_step` then works through that table,
at most ``FANOUT_CHUNK`` children per transaction, following ``deps`` in ``child_id``
order from the row's cursor. Every step is idempotent per child, so a row left behind by a
process that died is simply finished by the next caller.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from ...constants import FANOUT_CHUNK
from ...exceptions import MissingParentError
from ...types import TaskStatus
from ._base import blocked_reasons, cascade_reasons, dead_reason

__all__ = ["CASCADE_JOB", "FanoutResult", "add_fanout", "add_fanouts", "auto_removed",
           "check_requeue", "fanout_step", "revive"]

RELEASE, CANCEL, REVIVE = "release", "cancel", "revive"
_IDS = "(SELECT value FROM json_each(?))"
_WAITING = ("(SELECT count(*) FROM deps AS d JOIN tasks AS p ON p.id = d.parent_id "
            "WHERE d.child_id = tasks.id AND p.status != 'succeeded')")
_REVIVE = (
    "UPDATE tasks SET status = 'pending', attempts = 0, error = NULL, result = NULL, "
    "cancel_reason = NULL, cancel_requested = 0, finished_at = NULL, run_at = NULL, due = ?, "
    f"worker_id = NULL, lease_expires_at = NULL, waiting = {_WAITING} WHERE id = ?"
)


CASCADE_JOB = (
    "INSERT INTO fanout (kind, task_id, reason) SELECT 'cancel', ?1, ?2 WHERE ?3 IS NOT NULL "
    "AND EXISTS (SELECT 1 FROM deps WHERE parent_id = ?1)"
)
"""Run with ``(task id, reason, now)``: note that its descendants are to be cancelled."""


@dataclass(slots=True)
class FanoutResult:
    more: bool = False
    """Fan-out work is left for another step."""
    released: bool = False
    """Some child became due."""


def auto_removed(conn: sqlite3.Connection, task_id: str) -> bool:
    """Delete a succeeded ``auto_remove`` task no other task depends on; True if deleted."""
    if not conn.execute("DELETE FROM tasks WHERE id = ?1 AND auto_remove = 1 AND NOT EXISTS "
                        "(SELECT 1 FROM deps WHERE parent_id = ?1)", (task_id,)).rowcount:
        return False
    conn.execute("DELETE FROM deps WHERE child_id = ?", (task_id,))
    return True


def add_fanout(conn: sqlite3.Connection, task_id: str, status: TaskStatus) -> None:
    """Note the fan-out of a task that just ended (or, PENDING, was requeued)."""
    if status is TaskStatus.SUCCEEDED:
        kind, reason = RELEASE, ""
    elif status is TaskStatus.PENDING:
        kind, reason = REVIVE, task_id
    else:
        kind, reason = CANCEL, dead_reason(task_id, status)
    _add(conn, kind, task_id, reason)


def add_fanouts(conn: sqlite3.Connection, ended: list[tuple[str, TaskStatus]]) -> None:
    """:func:`add_fanout` for each of the tasks that just ended, one query finding those
    that have children."""
    if not ended:
        return
    parents = {row[0] for row in conn.execute(
        f"SELECT DISTINCT parent_id FROM deps WHERE parent_id IN {_IDS}",
        (json.dumps([task_id for task_id, _ in ended]),))}
    for task_id, status in ended:
        if task_id in parents:
            add_fanout(conn, task_id, status)


def _add(conn: sqlite3.Connection, kind: str, task_id: str, reason: str) -> None:
    conn.execute("INSERT INTO fanout (kind, task_id, reason) SELECT ?, ?, ? WHERE EXISTS "
                 "(SELECT 1 FROM deps WHERE parent_id = ?)", (kind, task_id, reason, task_id))


def fanout_step(conn: sqlite3.Connection, now: float,
                budget: int = FANOUT_CHUNK) -> FanoutResult:
    """Work through noted fan-outs, about ``budget`` children; call inside a transaction."""
    result = FanoutResult()
    while budget > 0:
        job = conn.execute("SELECT seq, kind, task_id, reason, after FROM fanout "
                           "ORDER BY seq LIMIT 1").fetchone()
        if job is None:
            return result
        seq, kind, task_id, reason, after = job
        weight = 2 if kind == REVIVE else 1  # a revive reads and writes more per child
        asked = max(1, budget // weight)
        ids = [row[0] for row in conn.execute(
            "SELECT child_id FROM deps WHERE parent_id = ? AND child_id > ? "
            "ORDER BY child_id LIMIT ?", (task_id, after, asked))]
        budget -= len(ids) * weight + 1
        if kind == RELEASE:
            result.released = _release(conn, ids) or result.released
        elif kind == CANCEL:
            _cancel(conn, ids, reason, now)
        else:
            _revive_children(conn, ids, reason, now)
        if len(ids) < asked:
            conn.execute("DELETE FROM fanout WHERE seq = ?", (seq,))
        else:
            conn.execute("UPDATE fanout SET after = ? WHERE seq = ?", (ids[-1], seq))
    result.more = conn.execute("SELECT 1 FROM fanout LIMIT 1").fetchone() is not None
    return result


def _release(conn: sqlite3.Connection, ids: list[str]) -> bool:
    rows = conn.execute(f"UPDATE tasks SET waiting = {_WAITING} WHERE id IN {_IDS} AND "
                        f"+status = 'pending' RETURNING waiting", (json.dumps(ids),)).fetchall()
    return any(waiting == 0 for (waiting,) in rows)


def _cancel(conn: sqlite3.Connection, ids: list[str], reason: str, now: float) -> None:
    cancelled = [row[0] for row in conn.execute(
        f"UPDATE tasks SET status = 'cancelled', cancel_reason = ?, finished_at = ?, "
        f"worker_id = NULL, lease_expires_at = NULL WHERE id IN {_IDS} AND "
        f"+status IN ('pending', 'running') RETURNING id", (reason, now, json.dumps(ids)))]
    for task_id in cancelled:
        _add(conn, CANCEL, task_id, reason)


def _revive_children(conn: sqlite3.Connection, ids: list[str], root: str, now: float) -> None:
    reasons = cascade_reasons(root)
    rows = conn.execute(
        f"SELECT id, parents, unique_key FROM tasks WHERE id IN {_IDS} AND "
        f"+status = 'cancelled' AND cancel_reason IN (?, ?)", (json.dumps(ids), *reasons))
    for task_id, parents, unique_key in rows.fetchall():
        blocked = _blocked(conn, task_id, parents, unique_key, reasons)
        if blocked is None:
            revive(conn, task_id, now)
            _add(conn, REVIVE, task_id, root)
        else:
            own, cascade = blocked
            conn.execute("UPDATE tasks SET cancel_reason = ? WHERE id = ?", (own, task_id))
            _add(conn, CANCEL, task_id, cascade)


def _parents(conn: sqlite3.Connection, parents: str) -> dict[str, tuple[str, str | None]]:
    return {pid: (status, reason) for pid, status, reason in conn.execute(
        f"SELECT id, status, cancel_reason FROM tasks WHERE id IN {_IDS}", (parents,))}


def _unique_holder(conn: sqlite3.Connection, task_id: str, unique_key: str | None) -> (
    str | None
):
    if unique_key is None:
        return None
    row = conn.execute("SELECT id FROM tasks WHERE unique_key = ? AND status IN "
                       "('pending', 'running') AND id != ?", (unique_key, task_id)).fetchone()
    return None if row is None else str(row[0])


def _blocked(conn: sqlite3.Connection, task_id: str, parents: str, unique_key: str | None,
             reasons: tuple[str, str]) -> tuple[str, str] | None:
    found = _parents(conn, parents)
    for parent_id in json.loads(parents):
        if parent_id not in found:
            return blocked_reasons(task_id, f"parent {parent_id} no longer exists")
        status, reason = found[parent_id]
        if status == "failed" or (status == "cancelled" and reason not in reasons):
            dead = dead_reason(parent_id, status)
            return dead, dead
    holder = _unique_holder(conn, task_id, unique_key)
    if holder is not None:
        return blocked_reasons(task_id, f"unique key {unique_key!r} is taken by task {holder}")
    return None


def check_requeue(conn: sqlite3.Connection, task_id: str, status: str, parents: str,
                  unique_key: str | None) -> None:
    """Raise the error that refuses requeuing ``task_id``, if any (see QueueStorage)."""
    if status not in ("failed", "cancelled"):
        raise ValueError(f"task {task_id} is {status}; only failed or cancelled tasks can be "
                         f"retried")
    found = _parents(conn, parents)
    for parent_id in json.loads(parents):
        if parent_id not in found:
            raise MissingParentError(f"task {task_id} can't be retried: its parent "
                                     f"{parent_id} no longer exists")
        if found[parent_id][0] in ("failed", "cancelled"):
            raise ValueError(f"task {task_id} can't be retried: its parent {parent_id} is "
                             f"{found[parent_id][0]}; retry the parent first")
    holder = _unique_holder(conn, task_id, unique_key)
    if holder is not None:
        raise ValueError(f"task {task_id} can't be retried: its unique key {unique_key!r} "
                         f"is taken by task {holder}")


def revive(conn: sqlite3.Connection, task_id: str, now: float) -> None:
    """``pending`` again, due now, waiting on its parents that have not succeeded."""
    conn.execute(_REVIVE, (now, task_id))
