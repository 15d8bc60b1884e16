"""Rate-limit counters in a SQLite file (``sqlite:///tasks.db``), beside the queue's tables.

One connection per URL and event-loop run, used from a worker thread so the event loop never
blocks. A hit is one ``UPSERT ... RETURNING`` in a ``BEGIN IMMEDIATE`` transaction, so
processes sharing the file count together. The table is ours alone (the queue's schema
version in ``PRAGMA user_version`` is left as it is), so either may create the file first.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from ._ratelimit_counters import Counters, Window
from .constants import RATELIMIT_SWEEP_EVERY
from .exceptions import BackendUnavailable
from .queued_tasks.backends._sqlite_connect import connect_file, path_from_url, transaction

__all__ = ["TABLE", "SQLiteCounters"]

T = TypeVar("T")
TABLE = "qakeapi_ratelimit"
_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
           f"reset_at REAL NOT NULL) WITHOUT ROWID")
# A stored window is used only when it is sane (see _ratelimit_counters.fresh_window); a
# text count, a negative or overflowing one, or an end out of (now, now + period] opens a
# new window instead. In an UPDATE every right-hand side reads the row as it was.
_SANE = (f"(typeof({TABLE}.count) = 'integer' AND {TABLE}.count BETWEEN 0 AND 4611686018427387903 "
         f"AND typeof({TABLE}.reset_at) IN ('integer', 'real') "
         f"AND {TABLE}.reset_at > :now AND {TABLE}.reset_at <= :now + :period)")
_HIT = (f"INSERT INTO {TABLE} (key, count, reset_at) VALUES (:key, 1, :now + :period) "
        f"ON CONFLICT (key) DO UPDATE SET "
        f"count = CASE WHEN {_SANE} THEN {TABLE}.count + 1 ELSE 1 END, "
        f"reset_at = CASE WHEN {_SANE} THEN {TABLE}.reset_at ELSE excluded.reset_at END "
        f"RETURNING count, reset_at")
_SWEEP = f"DELETE FROM {TABLE} WHERE typeof(reset_at) IN ('integer', 'real') AND reset_at <= ?"


def _open(path: str) -> sqlite3.Connection:
    conn = connect_file(path, "the rate-limit counters in")
    try:
        conn.execute(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _hit(conn: sqlite3.Connection, key: str, period: float, now: float, sweep: bool
         ) -> tuple[Any, Any]:
    with transaction(conn):
        if sweep:
            conn.execute(_SWEEP, (now,))
        row = conn.execute(_HIT, {"key": key, "now": now, "period": period}).fetchone()
    return row[0], row[1]


class SQLiteCounters(Counters):
    def __init__(self, url: str) -> None:
        self.path = path_from_url(url)
        self.clock: Callable[[], float] = time.time
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._hits = 0

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args),
                                                  limiter=self._limiter)
        except sqlite3.Error as exc:
            raise BackendUnavailable(
                f"rate-limit counters in SQLite {self.path}: {exc} (is it a writable SQLite "
                f"database?)") from exc

    async def connect(self) -> None:
        self._conn = await self._run(_open, self.path)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)

    async def hit(self, key: str, period: float) -> Window:
        conn = self._conn
        if conn is None:
            raise BackendUnavailable(f"rate-limit counters in {self.path} are not connected")
        now = self.clock()
        self._hits += 1
        count, reset_at = await self._run(_hit, conn, key, period, now,
                                          self._hits % RATELIMIT_SWEEP_EVERY == 0)
        if not isinstance(count, int) or not isinstance(reset_at, (int, float)) or not (
                math.isfinite(reset_at)):
            raise BackendUnavailable(  # only a table changed under us gets here
                f"rate-limit counters in {self.path}: stored window {count!r}, {reset_at!r} "
                f"is not a count and a time")
        return Window(count, max(0.0, float(reset_at) - now))
