"""Poison rows: stored task rows that can't be read, written past the storage's own checks
(the contract suite's ``poison`` fixture, the CLI tests and the property test use them)."""

from __future__ import annotations

import copy
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import redis

from qakeapi.queued_tasks.backends import QueueStorage
from qakeapi.queued_tasks.backends._memory import MemoryStorage
from qakeapi.queued_tasks.backends._redis import RedisStorage
from qakeapi.queued_tasks.backends._sqlite import SQLiteStorage
from qakeapi.types import TaskRecord

from ._redis import REDIS_URL

DEEP = 100_000
_IN_REDIS_S = {"name", "args", "kwargs", "max_retries", "timeout", "priority", "created_at",
               "parents", "unique_key"}
"""Fields the Redis backend keeps in the JSON of the task hash's ``s`` field."""
_REDIS_HASH_KEY = {"lease_expires_at": "lease"}


def deep_list(depth: int) -> list[Any]:
    top: list[Any] = []
    inner = top
    for _ in range(depth - 1):
        inner.append([])
        inner = inner[0]
    return top


@dataclass(frozen=True)
class Poison:
    """One bad field: ``raw`` is what a durable backend holds (text, non-UTF-8 bytes, a
    number); ``value`` is the same mistake as the Python value a memory record would hold."""

    field: str
    raw: str | bytes | int | float
    value: Any


POISONS = {
    "args nested 100,000 deep": Poison("args", "[" * DEEP + "]" * DEEP, deep_list(DEEP)),
    "args invalid JSON": Poison("args", "{not json", "{not json"),
    "kwargs not an object": Poison("kwargs", "[1, 2]", [1, 2]),
    "context invalid JSON": Poison("context", "{nope", "{nope"),
    "error not an object": Poison("error", "[1]", [1]),
    "unknown status": Poison("status", "bogus", "bogus"),
    "text priority": Poison("priority", "high", "high"),
    "text attempts": Poison("attempts", "x", "x"),
    "parents not a list": Poison("parents", "5", 5),
    "name not UTF-8": Poison("name", b'"\xff\xfe"', b"\xff\xfe"),
    "timeout text": Poison("timeout", '"soon"', "soon"),
    "created_at too big": Poison("created_at", "1e400", float("inf")),
    "context not UTF-8": Poison("context", b'{"a": "\xff\xfe"}', b"\xff\xfe"),
}


async def store_poisoned(storage: QueueStorage, record: TaskRecord, field: str,
                         raw: str | bytes | int | float, value: Any) -> None:
    """Store ``record`` with ``field`` made bad, the way each backend could find it: set on
    the record given to the memory backend, written into the SQLite row or the Redis hash
    after a normal enqueue."""
    if isinstance(storage, MemoryStorage):
        bad = copy.copy(record)
        setattr(bad, field, value)
        await storage.enqueue([bad])
        return
    await storage.enqueue([record])
    if isinstance(storage, SQLiteStorage):
        with sqlite3.connect(storage.path) as conn:
            cell = "CAST(? AS TEXT)" if isinstance(raw, bytes) else "?"
            conn.execute(f"UPDATE tasks SET {field} = {cell} WHERE id = ?", (raw, record.id))
        return
    assert isinstance(storage, RedisStorage)
    client = redis.Redis.from_url(REDIS_URL)
    key = storage.key(f"t:{record.id}")
    data = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else (
        str(raw).encode())
    if field in _IN_REDIS_S:
        fixed = json.loads(client.hget(key, "s"))  # type: ignore[arg-type]
        fixed[field] = "\x00poison\x00"
        data = json.dumps(fixed).encode().replace(b'"\\u0000poison\\u0000"', data)
        client.hset(key, "s", data)
    else:
        client.hset(key, _REDIS_HASH_KEY.get(field, field), data)
