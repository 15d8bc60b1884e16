"""Cursors of the task list (``backends._paging``): a position survives the round trip
whatever its sort key holds (an infinite or textual time from a damaged row, an int or an id
as tiebreak), and a cursor checks the backend and the filters it was made for."""

from __future__ import annotations

import math

import pytest

from qakeapi.exceptions import InvalidCursor
from qakeapi.queued_tasks.backends._paging import Listing, Position, listing, page_of
from qakeapi.types import TaskRecord, TaskStatus


@pytest.mark.parametrize("position", [
    Position(1_700_000_000.123456, 42), Position(math.inf, 7), Position(-math.inf, "id-1"),
    Position("1e400 as text", 3, newer=True), Position(0.1 + 0.2, "é|ü", newer=True),
])
def test_positions_round_trip(position: Position) -> None:
    request = Listing("sqlite", TaskStatus.PENDING, "jobs:x", 10)
    assert request.decode(request.encode(position)) == position


def test_a_cursor_is_tied_to_its_backend_and_filters() -> None:
    cursor = Listing("redis", None, "jobs:x", 10).encode(Position(1.0, "a"))
    assert Listing("redis", None, "jobs:x", 50).decode(cursor) == Position(1.0, "a")
    with pytest.raises(InvalidCursor, match="redis queue's task list, not this memory"):
        Listing("memory", None, "jobs:x", 10).decode(cursor)
    with pytest.raises(InvalidCursor, match="other filters"):
        Listing("redis", TaskStatus.FAILED, "jobs:x", 10).decode(cursor)


def test_listing_normalises_its_arguments() -> None:
    request, position = listing("memory", "failed", "", 5, None)
    assert (request.status, request.name, position) == (TaskStatus.FAILED, None, None)


def rows(*stamps: float) -> list[tuple[float, int, TaskRecord]]:
    return [(t, i, TaskRecord(id=f"t{i}", name="n", created_at=t)) for i, t in enumerate(stamps)]


def test_page_of_sets_the_neighbours() -> None:
    request = Listing("memory", None, None, 2)
    top = page_of(request, None, rows(3.0, 2.0, 1.0))
    assert [r.id for r in top.records] == ["t0", "t1"] and top.newer is None
    assert top.older is not None and request.decode(top.older) == Position(2.0, 1)
    last = page_of(request, request.decode(top.older), rows(1.0))
    assert last.older is None and last.newer is not None
    assert request.decode(last.newer) == Position(1.0, 0, newer=True)
    # a newer page arrives nearest first and is shown newest first
    newer = page_of(request, Position(1.0, 0, newer=True), rows(2.0, 3.0, 4.0))
    assert [r.id for r in newer.records] == ["t1", "t0"]
    assert newer.newer is not None and request.decode(newer.newer) == Position(3.0, 1, True)
    assert newer.older is not None and request.decode(newer.older) == Position(2.0, 0)
