"""Redis-specific behaviour: URLs, key layout, counts without scans, docs/redis.md."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from qakeapi.exceptions import BackendUnavailable
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.queued_tasks.backends._redis import RedisStorage, parse_redis_url
from qakeapi.types import TaskRecord, TaskStatus

from ._docs import ROOT, python_blocks
from ._redis import REDIS_URL, private_redis, redis_queue_url
from ._server import free_port


def test_url_parsing() -> None:
    url, prefix, where = parse_redis_url("redis://:pw@db.internal:6380/3?prefix=shop")
    assert (url, prefix, where) == ("redis://:pw@db.internal:6380/3", "shop", "db.internal:6380")
    assert parse_redis_url("rediss://h/0")[1:] == ("qakeapi", "h:6379")
    assert isinstance(open_storage("rediss://h/0"), RedisStorage)


@pytest.fixture
def url() -> Iterator[str]:
    with redis_queue_url() as queue_url:
        yield queue_url


@pytest.mark.anyio
async def test_keys_stay_under_the_prefix_and_counts_need_no_scan(url: str) -> None:
    storage = open_storage(url)
    await storage.connect()
    try:
        records = [TaskRecord(id=f"t{i}", name="m:f", args=[], kwargs={}, created_at=1.0 + i)
                   for i in range(3)]
        await storage.enqueue(records)
        await storage.claim("w", 1, 30)
        prefix = parse_redis_url(url)[1]
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        keys = set(client.scan_iter(match=f"{prefix}:*"))
        assert keys and all(k.startswith(prefix + ":") for k in keys)
        assert client.hgetall(f"{prefix}:counts") == {"pending": "2", "running": "1"}
        stats = await storage.stats()
        assert (stats.counts[TaskStatus.PENDING], stats.counts[TaskStatus.RUNNING]) == (2, 1)
    finally:
        await storage.close()


@pytest.mark.anyio
async def test_corrupt_payload_fails_the_task_not_the_worker(url: str) -> None:
    storage = open_storage(url)
    await storage.connect()
    try:
        good = TaskRecord(id="good", name="m:f", args=[], kwargs={}, created_at=1.0)
        bad = TaskRecord(id="bad", name="m:f", args=[], kwargs={}, created_at=0.5)
        await storage.enqueue([bad, good])
        prefix = parse_redis_url(url)[1]
        redis.Redis.from_url(REDIS_URL).hset(f"{prefix}:t:bad", "s", "{not json")
        claimed = await storage.claim("w", 10, 30)
        assert [r.id for r in claimed] == ["good"]
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        assert client.hget(f"{prefix}:t:bad", "status") == "failed"
        assert "CorruptTaskError" in client.hget(f"{prefix}:t:bad", "error")  # type: ignore[operator]
    finally:
        await storage.close()


@pytest.mark.anyio
@pytest.mark.parametrize("case", ["unreachable", "wrong-password"])
async def test_connect_errors_are_clear(tmp_path: Path, case: str) -> None:
    port = free_port()
    if case == "unreachable":
        storage = open_storage(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port} is unreachable"):
            await storage.connect()
        return
    with private_redis(tmp_path, port, "--requirepass", "right"):
        storage = open_storage(f"redis://:sekrit@127.0.0.1:{port}/0")
        with pytest.raises(BackendUnavailable, match="refused the password") as info:
            await storage.connect()
        assert "sekrit" not in str(info.value)


def test_docs_example(capsys: pytest.CaptureFixture[str]) -> None:
    [block] = python_blocks("docs/redis.md")
    ns: dict[str, Any] = {"__name__": "docs_redis"}
    exec(block, ns)
    assert capsys.readouterr().out.startswith("unavailable: Redis at 127.0.0.1:1")


def test_docs_commands_parse() -> None:
    text = (ROOT / "docs/redis.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    url = block.split('QUEUE_URL="', 1)[1].split('"', 1)[0]
    assert parse_redis_url(url)[1:] == ("shop", "redis.internal:6379")
    assert 'pip install "qakeapi[redis]"' in block
    result = subprocess.run([sys.executable, "-m", "qakeapi", "queue", "start", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert "--workers" in result.stdout
