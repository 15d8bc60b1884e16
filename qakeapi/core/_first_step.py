"""Running a coroutine while noting whether it ever awaits.

A background runner runs quick tasks back to back. Another runner is worth waking only
while a task really waits (a sleep, I/O, a lock): then the pending tasks start side by side.
A task that ends in its first step (most fire-and-forget jobs do) leaves its runner free at
once, so a second runner woken for the next task would wake to an empty queue — an event
set and a task switch spent for nothing, once every few requests under a server.

:func:`run_watching` awaits a coroutine like ``await coro`` does, and calls ``on_suspend()``
the first time the coroutine hands control to the event loop.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["run_watching"]

T = TypeVar("T")


@types.coroutine
def run_watching(coro: Coroutine[Any, Any, T],
                 on_suspend: Callable[[], None]) -> Generator[Any, Any, T]:
    """``await run_watching(coro, on_suspend)``: ``await coro``, calling ``on_suspend()``
    (once, before the event loop runs anything else) when ``coro`` first suspends."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    on_suspend()
    # Pass the event loop's values and exceptions through, as ``await`` does (``yield
    # from`` can't take over a coroutine that has already run a step).
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                result = stop.value
                return result
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                result = stop.value
                return result
