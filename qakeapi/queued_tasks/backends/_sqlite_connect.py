"""Opening the SQLite queue's file: its URL, the connection's settings, schema upgrades,
and the one transaction shape every state change uses."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from ...exceptions import BackendUnavailable, ConfigurationError
from ._sqlite_schema import (
    ADD_AUTO_REMOVE,
    COUNT_TASKS,
    SCHEMA,
    SCHEMA_VERSION,
    TO_SCHEMA_5,
    text_or_escaped,
)

__all__ = ["backend_error", "connect_file", "open_connection", "path_from_url", "transaction"]


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


def connect_file(path: str, what: str) -> sqlite3.Connection:
    """An autocommit connection to the SQLite file ``path`` with a 30 s busy timeout, WAL
    asked for and ``synchronous = NORMAL``; BackendUnavailable naming ``what`` when its
    directory does not exist. The caller checks the journal mode if it needs WAL."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise BackendUnavailable(
            f"can't open {what} {path}: directory {directory} does not exist")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def open_connection(path: str) -> sqlite3.Connection:
    """A connection in WAL mode with the current schema (created or upgraded in one
    transaction); BackendUnavailable for a file this qakeapi can't use."""
    try:
        conn = connect_file(path, "the SQLite queue")
        conn.text_factory = text_or_escaped
        try:
            _prepare(conn, path)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise BackendUnavailable(
            f"can't use the SQLite queue {path}: {exc} (is it a writable SQLite "
            f"database?)") from exc
    return conn


def _prepare(conn: sqlite3.Connection, path: str) -> None:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        raise BackendUnavailable(f"the SQLite queue {path} can't use WAL mode (got {mode})")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise BackendUnavailable(
            f"the SQLite queue {path} has schema version {version}; this qakeapi knows up to "
            f"{SCHEMA_VERSION}: upgrade qakeapi")
    if version < SCHEMA_VERSION:
        upgrade = f"{ADD_AUTO_REMOVE};" if 0 < version < 3 else ""
        upgrade += f"{TO_SCHEMA_5};" if 0 < version < 5 else ""
        conn.executescript(f"BEGIN IMMEDIATE;{upgrade}{SCHEMA}{COUNT_TASKS};"
                           f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
    conn.execute("SELECT count(*) FROM workers").fetchone()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def backend_error(path: str, exc: sqlite3.DatabaseError) -> BackendUnavailable | None:
    """The BackendUnavailable a failed statement means (locked, I/O, damaged file), or None
    for an error that is the caller's own."""
    if isinstance(exc, sqlite3.OperationalError):
        return BackendUnavailable(f"SQLite queue {path}: {exc}")
    if exc.sqlite_errorname.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return BackendUnavailable(
            f"the SQLite queue {path} is damaged ({exc}): restore it from a backup or rescue "
            f"what is left with `sqlite3 {path} .recover`")
    return None
