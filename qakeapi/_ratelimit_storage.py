"""Where rate-limit counters live: the storage a URL names, as for the queue.

Every storage keeps fixed windows: the first hit on a key opens a window of ``period``
seconds, each hit adds one, and the window (with its count) ends ``period`` seconds after it
opened. :meth:`Counters.hit` is one atomic step on every storage (one ``UPSERT`` on SQLite,
one Lua script on Redis), so processes sharing a file or a Redis count together.

A stored window that makes no sense (a count that is not a non-negative integer, an end that
is not a finite time within ``period`` from now) is replaced by a new one: a damaged or
hostile row can neither lock a client out for ever nor crash the request.

The interface each storage implements is in ``_ratelimit_counters``. SQLite and Redis
connections are bound to the event loop that opened them, so
:func:`shared_counters` keeps one per URL for each run of an event loop (an anyio
``RunVar``); :func:`close_shared` closes them (at the app's shutdown).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
from anyio.lowlevel import RunVar

from ._importing import require_extra
from ._ratelimit_counters import Counters, Window, fresh_window
from .constants import RATELIMIT_SWEEP_EVERY
from .exceptions import ConfigurationError

__all__ = ["Counters", "MemoryCounters", "Window", "close_shared", "open_counters",
           "scheme_of", "shared_counters"]


class MemoryCounters(Counters):
    """Counters in this process (``memory://``): each limit holds its own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[str, list[float]] = {}
        self._opened = 0

    async def connect(self) -> None:
        """Nothing to open: the counters are this object's."""

    async def close(self) -> None:
        """Nothing to close; the counters stay (they are the process's memory)."""

    async def hit(self, key: str, period: float) -> Window:
        # No await between the read and the write: atomic within the event loop.
        now = self.clock()
        window = self._windows.get(key)
        if window is None or fresh_window(int(window[0]), window[1], now, period):
            self._opened += 1
            if self._opened % RATELIMIT_SWEEP_EVERY == 0:
                self._sweep(now)
            window = self._windows[key] = [0, now + period]
        window[0] += 1
        return Window(int(window[0]), window[1] - now)

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, reset_at) in self._windows.items() if reset_at <= now]:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)


def scheme_of(url: str) -> str:
    """The storage scheme of ``url``; ConfigurationError for one rate limits can't use."""
    if not isinstance(url, str):
        raise ConfigurationError(f"a rate-limit storage URL must be a str, got {url!r}")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("memory", "sqlite", "redis", "rediss"):
        raise ConfigurationError(
            f"unknown rate-limit storage scheme {scheme!r} in {url!r}; use one of: memory://, "
            f"sqlite:///path/file.db, redis://host:port/db")
    return scheme


def open_counters(url: str) -> Counters:
    """A (not yet connected) storage for a ``sqlite://``, ``redis://`` or ``rediss://`` URL."""
    scheme = scheme_of(url)
    if scheme == "sqlite":
        from ._ratelimit_sqlite import SQLiteCounters

        return SQLiteCounters(url)
    if scheme in ("redis", "rediss"):
        require_extra("redis.asyncio", "redis", f"rate limits in {url!r} need the Redis driver")
        from ._ratelimit_redis import RedisCounters

        return RedisCounters(url)
    raise ConfigurationError(f"{url!r}: memory counters belong to each limit, not to a URL")


class _Shared:
    __slots__ = ("counters", "lock")

    def __init__(self) -> None:
        self.counters: dict[str, Counters] = {}
        self.lock = anyio.Lock()


_shared: RunVar[_Shared] = RunVar("qakeapi_ratelimit_counters")


def _current() -> _Shared:
    try:
        return _shared.get()
    except LookupError:
        shared = _Shared()
        _shared.set(shared)
        return shared


async def shared_counters(url: str) -> Counters:
    """The connected storage for ``url`` in this event loop's run (opened on first use)."""
    shared = _current()
    counters = shared.counters.get(url)
    if counters is not None:
        return counters
    async with shared.lock:
        counters = shared.counters.get(url)
        if counters is None:
            counters = open_counters(url)
            await counters.connect()
            shared.counters[url] = counters
    return counters


async def close_shared() -> None:
    """Close the storages :func:`shared_counters` opened in this run (they reopen on use)."""
    shared = _current()
    async with shared.lock:
        opened = list(shared.counters.values())
        shared.counters.clear()
        for counters in opened:
            await counters.close()
