"""Redis for tests: ``QAKEAPI_TEST_REDIS_URL`` (default db 15), a unique prefix per test,
its keys deleted afterwards. Without a Redis the tests skip — except under CI, where they
fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is required under CI: {exc}")
        pytest.skip(f"no Redis answers at {REDIS_URL} ({exc}); set QAKEAPI_TEST_REDIS_URL")


def delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])


@contextmanager
def redis_queue_url() -> Iterator[str]:
    """A queue URL on the test Redis with a fresh prefix, cleaned up afterwards."""
    require_redis()
    prefix = f"qtest-{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in REDIS_URL else "?"
    try:
        yield f"{REDIS_URL}{separator}prefix={prefix}"
    finally:
        delete_prefix(REDIS_URL, prefix)


@contextmanager
def private_redis(directory: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own on ``port`` (stopped afterwards)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server is not installed")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.5,
                         password=extra[extra.index("--requirepass") + 1]
                         if "--requirepass" in extra else None)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.RedisError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)
