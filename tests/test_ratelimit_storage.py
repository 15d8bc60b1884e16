"""The rate-limit counters' contract, on every storage: memory, a real SQLite file, a real
Redis. Counting is atomic (concurrent hits and two connections count together), windows end,
and a damaged or hostile stored window is replaced, never trusted or crashed on."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import redis

from qakeapi import _ratelimit_sqlite, _ratelimit_storage
from qakeapi._ratelimit_storage import (
    Counters,
    MemoryCounters,
    close_shared,
    open_counters,
    shared_counters,
)
from qakeapi.exceptions import BackendUnavailable, ConfigurationError
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.types import TaskRecord

from ._redis import REDIS_URL, delete_prefix, private_redis, require_redis
from ._server import free_port

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_redis()
    prefix = f"rltest-{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in REDIS_URL else "?"
    try:
        yield f"{REDIS_URL}{separator}prefix={prefix}"
    finally:
        delete_prefix(REDIS_URL, prefix)


def url_of(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/limits.db"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture(params=["memory", "sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_of(request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The storages several processes share (memory counters are one process's own)."""
    return url_of(request, tmp_path)


@pytest.fixture(params=["memory", "sqlite"])
def swept_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The storages that delete ended windows themselves (Redis expires keys)."""
    return url_of(request, tmp_path)


async def connected(url: str) -> Counters:
    counters = MemoryCounters() if url == "memory://" else open_counters(url)
    await counters.connect()
    return counters


@pytest.fixture
async def counters(url: str) -> AsyncIterator[Counters]:
    counters = await connected(url)
    yield counters
    await counters.close()


def raw_redis() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def redis_key(counters: Counters, key: str) -> str:
    return f"{counters.prefix}{key}"


async def end_window(counters: Counters, key: str, period: float) -> None:
    """Make the window of ``key`` end: the clock moves on (memory, SQLite) or the key's TTL
    runs out in Redis (its server alone decides when)."""
    clock = getattr(counters, "clock", None)
    if isinstance(clock, Clock):
        clock.now += period
        return
    client = raw_redis()
    client.pexpire(redis_key(counters, key), 1)
    while client.exists(redis_key(counters, key)):
        await anyio.sleep(0.01)


async def test_hits_count_per_key_within_a_window(counters: Counters) -> None:
    seen = [await counters.hit("a", 60) for _ in range(3)]
    assert [w.hits for w in seen] == [1, 2, 3]
    assert all(0 < w.reset_in <= 60 for w in seen)
    assert (await counters.hit("b", 60)).hits == 1


async def test_a_new_window_opens_when_the_last_one_ends(url: str) -> None:
    counters = await connected(url)
    if hasattr(counters, "clock"):
        counters.clock = Clock()  # type: ignore[attr-defined]
    try:
        for _ in range(4):
            await counters.hit("k", 30)
        await end_window(counters, "k", 30)
        fresh = await counters.hit("k", 30)
        assert fresh.hits == 1
        assert 0 < fresh.reset_in <= 30
    finally:
        await counters.close()


async def test_concurrent_hits_are_atomic(counters: Counters) -> None:
    seen: list[int] = []

    async def one() -> None:
        seen.append((await counters.hit("busy", 60)).hits)

    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(one)
    assert sorted(seen) == list(range(1, 41))


async def test_two_connections_count_together(shared_url: str) -> None:
    first, second = await connected(shared_url), await connected(shared_url)
    try:
        seen = []
        for i in range(10):
            seen.append((await (first if i % 2 else second).hit("shared", 60)).hits)
        assert seen == list(range(1, 11))
    finally:
        await first.close()
        await second.close()


# -- hostile or damaged stored windows ----------------------------------------------------
SQLITE_ROWS = [
    ("lots", 2e9),            # a text count
    (-5, None),               # a negative count
    (3, 1e300),               # an end far past now + period: a client locked out for ever
    (3, "nan"),               # an end that is text
    (2**62 + 5, None),        # a count about to overflow
    (3, -1.0),                # an end in the past (an expired window)
]


@pytest.mark.parametrize(("count", "reset_at"), SQLITE_ROWS)
async def test_sqlite_replaces_a_hostile_row(tmp_path: Path, count: object,
                                             reset_at: object) -> None:
    counters = await connected(f"sqlite:///{tmp_path}/limits.db")
    try:
        await counters.hit("other", 60)  # creates the table
        now = time.time()
        with sqlite3.connect(tmp_path / "limits.db") as conn:
            conn.execute(f"INSERT INTO {_ratelimit_sqlite.TABLE} VALUES (?, ?, ?)",
                         ("k", count, now + 10 if reset_at is None else reset_at))
        window = await counters.hit("k", 60)
        assert window.hits == 1
        assert 0 < window.reset_in <= 60
    finally:
        await counters.close()


async def test_sqlite_keeps_a_sane_row(tmp_path: Path) -> None:
    counters = await connected(f"sqlite:///{tmp_path}/limits.db")
    try:
        await counters.hit("other", 60)
        with sqlite3.connect(tmp_path / "limits.db") as conn:
            conn.execute(f"INSERT INTO {_ratelimit_sqlite.TABLE} VALUES ('k', 5, ?)",
                         (time.time() + 10,))
        window = await counters.hit("k", 60)
        assert window.hits == 6
        assert window.reset_in <= 10
    finally:
        await counters.close()


@pytest.mark.parametrize("setup", ["text", "negative", "overflow", "hash", "long-ttl"])
async def test_redis_replaces_a_hostile_key(redis_url: str, setup: str,
                                            caplog: pytest.LogCaptureFixture) -> None:
    counters = await connected(redis_url)
    key = redis_key(counters, "k")
    client = raw_redis()
    if setup == "text":
        client.set(key, "lots")
    elif setup == "negative":
        client.set(key, "-5", px=10_000)
    elif setup == "overflow":
        client.set(key, str(2**63 - 1), px=10_000)
    elif setup == "hash":
        client.hset(key, "count", "1")
    else:
        client.set(key, "3", ex=10**9)
    try:
        window = await counters.hit("k", 60)
    finally:
        await counters.close()
    assert window.hits == 1
    assert 0 < window.reset_in <= 60
    assert 0 < client.pttl(key) <= 60_000
    assert "held no sane count" in caplog.text


async def test_redis_gives_a_ttl_to_a_counter_without_one(redis_url: str) -> None:
    counters = await connected(redis_url)
    client = raw_redis()
    client.set(redis_key(counters, "k"), "3")
    try:
        window = await counters.hit("k", 60)
    finally:
        await counters.close()
    assert window.hits == 4
    assert 0 < client.pttl(redis_key(counters, "k")) <= 60_000


# -- storages that can't be used --------------------------------------------------------------
async def test_sqlite_in_a_missing_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await connected(f"sqlite:///{tmp_path}/nowhere/limits.db")


async def test_a_file_that_is_not_sqlite_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "limits.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendUnavailable, match="writable SQLite"):
        await connected(f"sqlite:///{tmp_path}/limits.db")
    assert (tmp_path / "limits.db").read_bytes() == b"this is not a database" * 100


async def test_redis_that_does_not_answer_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await connected(f"redis://127.0.0.1:{free_port()}/0")


@pytest.mark.parametrize("password", [None, "wrong"])
async def test_redis_that_refuses_the_password_is_unavailable(tmp_path: Path,
                                                              password: str | None) -> None:
    port = free_port()
    with private_redis(tmp_path, port, "--requirepass", "s3cret"):
        auth = "" if password is None else f":{password}@"
        with pytest.raises(BackendUnavailable, match="refused the password"):
            await connected(f"redis://{auth}127.0.0.1:{port}/0")
        counters = await connected(f"redis://:s3cret@127.0.0.1:{port}/0?prefix=app")
        try:
            assert (await counters.hit("k", 60)).hits == 1
        finally:
            await counters.close()


@pytest.mark.parametrize("url", ["postgres://db/x", "memcached://host", "", "tasks.db"])
def test_unknown_schemes_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown rate-limit storage scheme"):
        open_counters(url)


# -- beside the queue, sharing per event loop, sweeping -----------------------------------
@pytest.mark.parametrize("counters_first", [True, False])
async def test_sqlite_counters_share_the_queue_file(tmp_path: Path, counters_first: bool) -> None:
    url = f"sqlite:///{tmp_path}/tasks.db"
    queue = open_storage(url)
    counters = open_counters(url)
    for opened in ((counters, queue) if counters_first else (queue, counters)):
        await opened.connect()
    try:
        [stored] = await queue.enqueue([TaskRecord(id="t1", name="m:f")])
        assert (await counters.hit("k", 60)).hits == 1
        assert (await queue.get("t1")).id == stored.id
    finally:
        await counters.close()
        await queue.close()


async def test_shared_counters_open_once_per_url_and_close(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/limits.db"
    first = await shared_counters(url)
    assert await shared_counters(url) is first
    await first.hit("k", 60)
    await close_shared()
    again = await shared_counters(url)
    assert again is not first
    assert (await again.hit("k", 60)).hits == 2
    await close_shared()


async def test_expired_windows_are_swept(swept_url: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = swept_url
    monkeypatch.setattr(_ratelimit_storage, "RATELIMIT_SWEEP_EVERY", 10)
    monkeypatch.setattr(_ratelimit_sqlite, "RATELIMIT_SWEEP_EVERY", 10)
    counters = await connected(url)
    clock = Clock()
    counters.clock = clock  # type: ignore[attr-defined]
    try:
        for i in range(9):
            await counters.hit(f"old{i}", 5)
        clock.now += 5
        await counters.hit("new", 60)  # the tenth new window (memory) or hit (SQLite)
        if isinstance(counters, MemoryCounters):
            assert len(counters) == 1
        else:
            path = counters.path
            with sqlite3.connect(path) as conn:
                keys = conn.execute(f"SELECT key FROM {_ratelimit_sqlite.TABLE}").fetchall()
            assert keys == [("new",)]
    finally:
        await counters.close()
