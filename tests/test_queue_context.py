"""Initial context given at creation: ``add_task(fn, ..., context={...})`` is stored with the
task on every backend and read inside it through ``get_context``; a value ``get_context``
could not give back as it was given is refused by ``add_task``, naming ``context``."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from qakeapi.queued_tasks import RESERVED_OPTIONS, QueuedTasks

from . import _queue_tasks as t
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio


async def test_initial_context_is_stored_and_read_inside_the_task(queue_url: str  # noqa: F811
                                                                  ) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        given = {"tenant": {"id": 7, "tags": ["a", "b"]}, "trace": "abc"}
        ref = tasks.add_task(t.read_context, "tenant.id", context=given)
        stored = await tasks.enqueue(t.read_context, "trace", context={"trace": "xyz"})
        assert await ref.result(10) == 7
        assert await stored.result(10) == "xyz"
        record = await ref.record()
        assert record.context == {**given, "seen": True}
        assert given == {"tenant": {"id": 7, "tags": ["a", "b"]}, "trace": "abc"}
        assert (await tasks.add_task(t.read_context, "trace").result(10)) is None
    assert "context" in RESERVED_OPTIONS


BAD_CONTEXTS: list[tuple[Any, type[Exception]]] = [
    ([("a", 1)], TypeError), ("a=1", TypeError), ({1: "x"}, TypeError),
    ({"when": dt.datetime(2026, 1, 1)}, TypeError), ({"a": [{"b": b"x"}]}, TypeError),
    ({"x": math.nan}, TypeError), ({"x": object()}, TypeError),
    ({"a.b": 1}, ValueError), ({"": 1}, ValueError), ({"a": {"b.c": 1}}, ValueError),
]


async def test_bad_context_is_refused_naming_it_and_nothing_is_stored(
        queue_url: str) -> None:  # noqa: F811
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        for value, error in BAD_CONTEXTS:
            with pytest.raises(error, match="context"):
                tasks.add_task(t.read_context, "a", context=value)
            with pytest.raises(error, match="context"):
                await tasks.enqueue(t.read_context, "a", context=value)
        await tasks.flush()
        assert await tasks.list() == []
