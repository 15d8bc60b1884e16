"""Keyset (cursor) paging of a queue's task list, the same on every backend.

A listing is the tasks of one backend matching a filter (a state, a name, both or none),
newest ``created_at`` first, ties broken by the backend's own order (the enqueue sequence on
memory and SQLite, the id on Redis). A page is read from a *position* — the sort key of the
row next to it — never from an offset, so a page deep in a list of millions costs what the
first one does, and tasks added or changing state between two pages never make a page skip
or repeat a task that still matches.

A cursor carries that position only (no argument, result or name: it can sit in a URL that
reaches logs), tagged with the backend and a digest of the filter, and checked with a digest
so a cursor that was cut, altered or made for another listing gets :class:`InvalidCursor`
instead of a wrong page. The digest is not a secret: a forged cursor can only move a reader
to a position it could page to anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...constants import TASK_PAGE_MAX
from ...exceptions import InvalidCursor
from ...types import TaskPage, TaskRecord, TaskStatus

__all__ = ["Listing", "Position", "Row", "SortValue", "listing", "matches", "nearest",
           "page_of"]

_KEY = b"qakeapi task list cursor 1"
_MAX_CURSOR_CHARS = 2_000
SortValue = float | int | str


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page starts: the sort key ``(created_at, tiebreak)`` of the row next to it.
    ``newer`` asks for the page just newer than it (a "newer" link) instead of older."""

    created_at: SortValue
    tiebreak: SortValue
    newer: bool = False


@dataclass(frozen=True, slots=True)
class Listing:
    """A checked request for one page."""

    kind: str
    status: TaskStatus | None
    name: str | None
    limit: int

    def _filter(self) -> str:
        text = f"{self.status.value if self.status else ''}\x00{self.name or ''}"
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()

    def encode(self, position: Position) -> str:
        body = json.dumps([self.kind, self._filter(), _value(position.created_at),
                           _value(position.tiebreak), int(position.newer)],
                          separators=(",", ":")).encode()
        mac = hmac.new(_KEY, body, hashlib.blake2b).digest()[:9]
        return f"{_b64(body)}.{_b64(mac)}"

    def decode(self, cursor: str) -> Position:
        if not isinstance(cursor, str):
            raise InvalidCursor(f"a page cursor is a string, got {type(cursor).__name__}")
        if len(cursor) > _MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise InvalidCursor("this page cursor is not one qakeapi made: start again from "
                                "the first page")
        body_text, mac_text = cursor.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error) as exc:
            raise InvalidCursor("this page cursor is not one qakeapi made: start again from "
                                "the first page") from exc
        if not hmac.compare_digest(mac, hmac.new(_KEY, body, hashlib.blake2b).digest()[:9]):
            raise InvalidCursor("this page cursor was altered or cut: start again from the "
                                "first page")
        try:
            kind, digest, created, tiebreak, newer = json.loads(body)
            position = Position(_parsed(created), _parsed(tiebreak), bool(newer))
        except (ValueError, TypeError) as exc:
            raise InvalidCursor("this page cursor is not one qakeapi made: start again from "
                                "the first page") from exc
        if kind != self.kind:
            raise InvalidCursor(f"this page cursor belongs to a {kind} queue's task list, not "
                                f"this {self.kind} queue's: start again from the first page")
        if digest != self._filter():
            raise InvalidCursor("this page cursor belongs to a task list with other filters: "
                                "start again from the first page")
        return position


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _value(value: SortValue) -> list[Any]:
    """A sort key part as JSON that keeps its type and every float (inf too)."""
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, int):
        return ["i", str(value)]
    return ["s", value]


def _parsed(raw: Any) -> SortValue:
    tag, text = raw
    if not isinstance(text, str):
        raise TypeError("a cursor value is text")
    if tag == "f":
        value = float(text)
        if math.isnan(value):
            raise ValueError("nan")
        return value
    if tag == "i":
        return int(text)
    if tag == "s":
        return text
    raise ValueError(f"unknown cursor value tag {tag!r}")


def listing(kind: str, status: TaskStatus | str | None, name: str | None, limit: int,
            cursor: str | None) -> tuple[Listing, Position | None]:
    """Check a page request: ValueError/TypeError naming the bad argument,
    :class:`InvalidCursor` for a cursor this listing can't use."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {limit!r}")
    if not 1 <= limit <= TASK_PAGE_MAX:
        raise ValueError(f"limit must be between 1 and {TASK_PAGE_MAX}, got {limit}")
    if status is not None and not isinstance(status, TaskStatus):
        if not isinstance(status, str):
            raise TypeError(f"status must be a TaskStatus, got {status!r}")
        try:
            status = TaskStatus(status)
        except ValueError:
            raise ValueError(f"unknown task status {status!r}; use one of "
                             f"{', '.join(s.value for s in TaskStatus)}") from None
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    checked = Listing(kind, status, name or None, limit)
    return checked, None if cursor is None else checked.decode(cursor)


def matches(request: Listing, record: TaskRecord) -> bool:
    """Whether a record read through an index still matches the filter (an index entry can
    be stale when someone wrote the storage past the queue)."""
    return ((request.status is None or record.status is request.status)
            and (request.name is None or record.name == request.name))


Row = tuple[SortValue, SortValue, TaskRecord]


def nearest(rows: Iterable[Row], position: Position | None, count: int) -> list[Row]:
    """The ``count`` rows next to ``position`` in the order :func:`page_of` takes them, picked
    from rows in any order (for a backend that holds every row in memory)."""
    if position is None:
        return heapq.nlargest(count, rows, key=_key)
    at = (position.created_at, position.tiebreak)
    if position.newer:
        return heapq.nsmallest(count, (r for r in rows if _key(r) > at), key=_key)
    return heapq.nlargest(count, (r for r in rows if _key(r) < at), key=_key)


def _key(row: Row) -> tuple[Any, Any]:
    return row[0], row[1]


def page_of(request: Listing, position: Position | None,
            rows: Sequence[Row]) -> TaskPage:
    """The page from up to ``limit + 1`` rows ``(created_at, tiebreak, record)`` read from
    ``position`` away from it: newest first when paging older (or from the top), nearest
    first (oldest first) when paging newer. One row more than the page says there is more."""
    more = len(rows) > request.limit
    rows = list(rows[:request.limit])
    if position is not None and position.newer:
        rows.reverse()
        records = [r for *_, r in rows]
        newer = request.encode(Position(*rows[0][:2], newer=True)) if more else None
        at = rows[-1][:2] if rows else (position.created_at, position.tiebreak)
        return TaskPage(records, older=request.encode(Position(*at)), newer=newer)
    records = [r for *_, r in rows]
    older = request.encode(Position(*rows[-1][:2])) if more else None
    newer = None
    if position is not None:
        at = rows[0][:2] if rows else (position.created_at, position.tiebreak)
        newer = request.encode(Position(*at, newer=True))
    return TaskPage(records, older=older, newer=newer)
