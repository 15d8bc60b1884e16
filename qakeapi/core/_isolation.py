"""Keeping a task's failure, or its stuck thread, inside that task.

* :func:`is_cancellation` tells the event loop cancelling a runner (which must go on up)
  from any other ``BaseException`` a task raises — ``SystemExit``, ``KeyboardInterrupt``,
  ``GeneratorExit``, a custom subclass, a ``CancelledError`` nobody asked for — which only
  fails that task.
* :class:`ThreadSlots` runs plain functions on at most ``total`` threads. anyio's
  ``to_thread.run_sync(abandon_on_cancel=True)`` gives its limiter token back as soon as the
  waiting task is cancelled, while the thread runs on (a thread can't be killed), so a limit
  of N allowed any number of threads. Here the slot is taken for the call and given back
  only when the thread returns: by the caller if it is still waiting, else by the thread
  itself (scheduled on the event loop). The caller may stop waiting at any time (deadline,
  cancel); the thread keeps its slot until it is really done.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import anyio

__all__ = ["ThreadSlots", "is_cancellation"]

logger = logging.getLogger("qakeapi.tasks")
T = TypeVar("T")


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is the event loop cancelling the current task (not one the task's own
    code raised while nothing was cancelling it)."""
    if isinstance(exc, asyncio.CancelledError):
        try:
            task = asyncio.current_task()
        except RuntimeError:  # another event loop: asyncio's class raised by the task itself
            return False
        return task is None or task.cancelling() > 0
    return isinstance(exc, anyio.get_cancelled_exc_class())


_WAITING, _RUNNING, _DONE, _GIVEN_UP = range(4)


def _loop_scheduler() -> Callable[[Callable[[], None]], object]:
    """On the event loop thread: a function any thread may call to run a callback on this
    loop soon, without waiting for it."""
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:  # anyio on trio
        trio = importlib.import_module("trio")
        schedule: Callable[[Callable[[], None]], object]
        schedule = trio.lowlevel.current_trio_token().run_sync_soon
        return schedule


class _ThreadCall(Generic[T]):
    """One call's state, shared by the waiting task and the thread (under ``lock``)."""

    __slots__ = ("fn", "lock", "release", "state")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.lock = threading.Lock()
        self.state = _WAITING
        self.release: Callable[[], None] | None = None
        """Set when the waiting task gave up while the thread runs: the thread calls it."""

    def __call__(self) -> T:
        with self.lock:
            if self.state == _GIVEN_UP:
                raise RuntimeError("nobody waits for this call any more")
            self.state = _RUNNING
        try:
            result = self.fn()
        except BaseException as exc:
            self._returned(exc)
            raise
        self._returned(None)
        return result

    def _returned(self, error: BaseException | None) -> None:
        with self.lock:
            self.state = _DONE
            release = self.release
        if release is not None:
            if error is not None:
                logger.warning("%r raised in its thread after its task stopped waiting",
                               getattr(self.fn, "func", self.fn), exc_info=error)
            release()


class _NoLimit:
    """A limiter that never waits, for ``to_thread.run_sync``: the slots already bound the
    threads, and a real limiter (even an unbounded one) costs an event-loop round per call."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        return None

    def release_on_behalf_of(self, borrower: object) -> None:
        return None


_NO_LIMIT = cast(anyio.CapacityLimiter, _NoLimit())


class ThreadSlots:
    """Runs plain functions on threads, at most ``total`` at once — counting the threads
    whose caller stopped waiting, until they return.

    ``on_release`` is called (on the event loop) when such an abandoned thread returns.
    """

    def __init__(self, total: int, on_release: Callable[[], None] | None = None) -> None:
        self.abandoned = 0
        """Threads still running whose caller stopped waiting for them."""
        self._on_release = on_release
        self._limiter = anyio.CapacityLimiter(total)

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a thread once a slot is free. A cancelled caller returns at once;
        the thread keeps its slot until it returns (a thread can't be killed)."""
        call = _ThreadCall(fn)
        limiter = self._limiter
        try:
            limiter.acquire_on_behalf_of_nowait(call)
        except anyio.WouldBlock:
            await limiter.acquire_on_behalf_of(call)
        try:
            result = await anyio.to_thread.run_sync(call, limiter=_NO_LIMIT,
                                                    abandon_on_cancel=True)
        except BaseException:
            self._stopped_waiting(call)
            raise
        limiter.release_on_behalf_of(call)
        return result

    def warn_if_abandoned(self, owner: str) -> None:
        """At shutdown: say so if abandoned threads still run (nothing can stop them)."""
        if self.abandoned:
            logger.warning(
                "%s stopped with %d task thread(s) still running: a thread can't be "
                "stopped, and the process exits only when they return (or is killed)",
                owner, self.abandoned)

    def _stopped_waiting(self, call: _ThreadCall[Any]) -> None:
        with call.lock:
            if call.state == _RUNNING:
                schedule = _loop_scheduler()
                call.release = functools.partial(self._schedule_release, schedule, call)
                self.abandoned += 1
                return
            if call.state == _WAITING:
                call.state = _GIVEN_UP
        self._limiter.release_on_behalf_of(call)

    def _schedule_release(self, schedule: Callable[[Callable[[], None]], object],
                          call: _ThreadCall[Any]) -> None:
        """In the abandoned thread, as it returns: free its slot on the event loop."""
        try:
            schedule(functools.partial(self._release_abandoned, call))
        except RuntimeError:
            logger.debug("event loop closed before an abandoned thread returned")

    def _release_abandoned(self, call: _ThreadCall[Any]) -> None:
        self._limiter.release_on_behalf_of(call)
        self.abandoned -= 1
        if self._on_release is not None:
            self._on_release()
