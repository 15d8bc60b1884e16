"""Fan-out over ids in chunks, and a resumable cursor: ``enqueue_id_range_tasks`` and
``iter_with_cursor``.

``await enqueue_id_range_tasks(tasks, fn, ids, chunk_size=200)`` stores one task
``fn(min_id=..., max_id=...)`` per chunk of the sorted, distinct ids, in one batch. Inside
such a task, ``iter_with_cursor(ids)`` yields the ids above the task's stored cursor and
commits each one (stores the cursor in the task's context) once the loop body for it has
run, before the next id is yielded; a task killed or retried resumes after the last
committed id. Delivery is at-least-once: ids yielded after the last commit run again.
"""

from __future__ import annotations

import bisect
import numbers
import operator
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio.from_thread

from ..constants import ID_RANGE_CHUNK_SIZE, ID_RANGE_MAX_TASKS, SETTING_MAX_COUNT
from ..core._options import check_count
from ._context import TaskContext, current_task

if TYPE_CHECKING:
    from ._queue import QueuedTasks
    from ._ref import TaskRef

__all__ = ["CURSOR_KEY", "CursorIterator", "enqueue_id_range_tasks", "iter_with_cursor"]

CURSOR_KEY = "cursor"
"""The context key ``iter_with_cursor`` keeps the last committed id under by default."""
_RANGE_ARGUMENTS = ("min_id", "max_id")


def _id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an int, got {value!r}")
    return operator.index(value)


def _ascending(ids: range) -> range:
    if not ids and ids.start != ids.stop:
        raise ValueError(f"{ids!r} is empty because its stop is on the wrong side of its "
                         f"start: swap them, or pass range(start, start) for no ids")
    return ids if ids.step > 0 else ids[::-1]


def _sorted_ids(ids: Iterable[int] | range, what: str) -> range | list[int]:
    """``ids`` ascending and distinct: a range stays a range (never expanded)."""
    if isinstance(ids, range):
        return _ascending(ids)
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"{what} must be a range or an iterable of ints, got {ids!r}")
    label = f"every id in {what}"
    return sorted({_id(value, label) for value in ids})


def _count(ids: range | list[int]) -> int:
    if isinstance(ids, list):
        return len(ids)
    return (ids.stop - ids.start - 1) // ids.step + 1 if ids else 0


def _chunks(ids: range | list[int], size: int) -> list[tuple[int, int]]:
    """``(min_id, max_id)`` of each run of ``size`` consecutive ids, inclusive."""
    count = _count(ids)
    tasks = -(-count // size)
    if tasks > ID_RANGE_MAX_TASKS:
        raise ValueError(
            f"{count:,} ids in chunks of {size:,} make {tasks:,} tasks, more than "
            f"{ID_RANGE_MAX_TASKS:,} at once: raise chunk_size or split the ids")
    return [(ids[start], ids[min(start + size, count) - 1]) for start in range(0, count, size)]


async def enqueue_id_range_tasks(tasks: QueuedTasks, fn: Callable[..., Any],
                                 ids: Iterable[int] | range, *,
                                 chunk_size: int = ID_RANGE_CHUNK_SIZE,
                                 **kwargs: Any) -> list[TaskRef]:
    """Store one task ``fn(min_id=..., max_id=..., **kwargs)`` per ``chunk_size`` ids.

    ``ids`` (a ``range``, kept as one, or any iterable of ints) are sorted and deduplicated;
    ``min_id``/``max_id`` are the first and last id of a chunk (inclusive), for the task to
    load its own ids between them. ``kwargs`` are the task's other arguments and the options
    of ``add_task``; ``auto_remove`` defaults to the registration's, else ``True`` (a chunk
    that succeeds leaves no record). The ids, ``chunk_size`` and options are checked before
    any task is added; the tasks are stored in one batch when this returns, their refs in
    id order (``[]`` for no ids)."""
    size = check_count("chunk_size", chunk_size, minimum=1, maximum=SETTING_MAX_COUNT)
    own = kwargs.get("task_kwargs")
    for name in _RANGE_ARGUMENTS:
        if name in kwargs or (isinstance(own, Mapping) and name in own):
            raise TypeError(f"enqueue_id_range_tasks passes {name} itself; don't give it")
    if kwargs.get("unique_key") is not None:
        raise ValueError("unique_key would make every chunk of the range the same task; "
                         "leave it out (each chunk is its own task)")
    chunks = _chunks(_sorted_ids(ids, "ids"), size)
    if kwargs.get("auto_remove") is None:
        registered = tasks.registry.for_function(fn).options.auto_remove
        kwargs["auto_remove"] = True if registered is None else registered
    refs: list[TaskRef] = []
    for min_id, max_id in chunks:
        try:
            refs.append(tasks.add_task(fn, min_id=min_id, max_id=max_id, **kwargs))
        except Exception as exc:
            if refs:
                exc.add_note(f"enqueue_id_range_tasks: the {len(refs)} chunk(s) before "
                             f"[{min_id}, {max_id}] were added and will be stored")
            raise
    for ref in refs:
        await ref.stored()
    return refs


class CursorIterator:
    """The ids of one ``iter_with_cursor`` call: ``async for`` in an ``async def`` task,
    ``for`` in a plain one (it runs in a worker thread)."""

    __slots__ = ("_ids", "commit_every", "key")

    def __init__(self, ids: Iterable[int] | range, key: str, commit_every: int) -> None:
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"key must be a non-empty dotted name like 'a.b', got {key!r}")
        self.key = key
        self.commit_every = check_count("commit_every", commit_every, minimum=1,
                                        maximum=SETTING_MAX_COUNT)
        self._ids = _sorted_ids(ids, "iter_with_cursor's ids")

    def _pending(self, ctx: TaskContext | None) -> range | list[int]:
        cursor = None if ctx is None else ctx.get(self.key)
        if cursor is None:
            return self._ids
        after = _id(cursor, f"the cursor stored in the task's context at {self.key!r}") + 1
        ids = self._ids
        if isinstance(ids, range):
            skip = max(0, -(-(after - ids.start) // ids.step))
            return ids[skip:]
        return ids[bisect.bisect_left(ids, after):]

    def _steps(self, ctx: TaskContext | None) -> Iterator[tuple[int, bool]]:
        """Each id to yield, and whether to commit it once its loop body has run."""
        pending = self._pending(ctx)
        last = _count(pending) - 1
        for position, item in enumerate(pending):
            yield item, (position + 1) % self.commit_every == 0 or position == last

    async def __aiter__(self) -> AsyncIterator[int]:
        ctx = current_task.get()
        for item, commit in self._steps(ctx):
            yield item
            if commit and ctx is not None:
                ctx.set(self.key, item)
                await ctx.save()

    def __iter__(self) -> Iterator[int]:
        ctx = current_task.get()
        if ctx is not None and _on_event_loop():
            raise RuntimeError("iter_with_cursor: in an `async def` task use `async for`; a "
                               "plain `for` is for plain (def) tasks, which run in a thread")
        for item, commit in self._steps(ctx):
            yield item
            if commit and ctx is not None:
                ctx.set(self.key, item)
                anyio.from_thread.run(ctx.save)


def _on_event_loop() -> bool:
    try:
        anyio.get_current_task()
    except RuntimeError:  # no event loop runs in this thread
        return False
    return True


def iter_with_cursor(ids: Iterable[int] | range, *, key: str = CURSOR_KEY,
                     commit_every: int = 1) -> CursorIterator:
    """The ids (sorted, distinct) above the running task's cursor, committing as it goes.

    Once the loop body for an id has run, asking for the next id first stores the cursor
    (``set_context(key, id)`` and the task's context saved in the queue) — every
    ``commit_every`` ids and after the last one. A run killed, timed out or retried starts
    again after the last committed id: the ids after it may run twice (at-least-once).
    Outside a queued task it yields every id and stores nothing."""
    return CursorIterator(ids, key, commit_every)
