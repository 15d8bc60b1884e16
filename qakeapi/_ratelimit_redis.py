"""Rate-limit counters in Redis (``redis://host:port/db?prefix=name``), beside the queue's keys.

A hit is one Lua script: ``INCR`` the key and give it the window's TTL when it has none. The
window's end is the key's TTL, kept by the Redis server, so machines whose clocks disagree
still count in the same windows. A key holding something else than a sane counter (text, a
hash, a negative number, a TTL longer than the period) is replaced by a new window, and the
repair is logged.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from ._ratelimit_counters import Counters, Window
from ._redis_errors import UNREACHABLE, unavailable_as_backend_error
from .exceptions import BackendUnavailable
from .queued_tasks.backends._redis import parse_redis_url

__all__ = ["KEY_PART", "RedisCounters"]

logger = logging.getLogger("qakeapi.ratelimit")
KEY_PART = "ratelimit"
"""Keys are ``{prefix}:ratelimit:{key}``, under the queue URL's ``?prefix=``."""

# KEYS[1] counter; ARGV[1] period in ms. Returns {count, ttl in ms, 1 if a bad value was
# replaced}. redis.pcall: INCR on text, a hash or an overflowing number is an error value.
_HIT = """
local ms = tonumber(ARGV[1])
local n = redis.pcall('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if type(n) ~= 'number' or n < 1 or ttl > ms then
  redis.call('SET', KEYS[1], 1, 'PX', ms)
  return {1, ms, 1}
end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ms)
  ttl = ms
end
return {n, ttl, 0}
"""
_ERRORS = UNREACHABLE


class RedisCounters(Counters):
    def __init__(self, url: str) -> None:
        self._redis_url, prefix, self._where = parse_redis_url(url)
        self.prefix = f"{prefix}:{KEY_PART}:"
        self._client: aioredis.Redis | None = None
        self._script: Any = None

    async def _call(self, what: Any) -> Any:
        with unavailable_as_backend_error(self._where):
            return await what

    async def connect(self) -> None:
        try:
            client = aioredis.from_url(self._redis_url, socket_connect_timeout=5,
                                       health_check_interval=10)
        except ValueError as exc:
            raise BackendUnavailable(f"bad Redis URL for {self._where}: {exc}") from exc
        try:
            await self._call(client.ping())
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._script = client.register_script(_HIT)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def hit(self, key: str, period: float) -> Window:
        if self._client is None:
            raise BackendUnavailable(f"rate-limit counters at {self._where} are not connected")
        ms = max(1, round(period * 1000))
        count, ttl, repaired = await self._call(
            self._script(keys=[self.prefix + key], args=[ms]))
        if repaired:
            logger.warning("rate-limit counter %s%s held no sane count; a new window opened",
                           self.prefix, key)
        return Window(int(count), int(ttl) / 1000)
