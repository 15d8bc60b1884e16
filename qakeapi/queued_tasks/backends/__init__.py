"""Queue backends, chosen by URL. Drivers are imported only when their scheme is used."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..._importing import require_extra
from ...exceptions import ConfigurationError
from ._base import QueueStorage, RenewResult

__all__ = ["SCHEMES", "QueueStorage", "RenewResult", "open_storage"]

SCHEMES = ("memory", "sqlite", "redis", "rediss")


def open_storage(url: str) -> QueueStorage:
    """A (not yet connected) storage for ``url``: ``memory://``, ``sqlite:///path/queue.db``,
    ``redis://[:password@]host:port/db[?prefix=name]`` or ``rediss://...``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from ._memory import MemoryStorage

        return MemoryStorage(url)
    if scheme == "sqlite":
        from ._sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if scheme in ("redis", "rediss"):
        require_extra("redis.asyncio", "redis", f"QUEUE_URL {url!r} needs the Redis driver")
        from ._redis import RedisStorage

        return RedisStorage(url)
    raise ConfigurationError(
        f"unknown QUEUE_URL scheme {scheme!r} in {url!r}; "
        f"use one of: memory://, sqlite:///path/queue.db, redis://host:port/db"
    )
