"""The views of a big queue: N tasks (1,000,000 by default) stored on SQLite and on Redis.

Metrics scrape: ``GET /metrics/`` of ``metrics_app(tasks)`` through the ASGI app (two storage
reads: ``stats()`` and the workers, then the exposition text). Two shapes of queue per
backend: a backlog (every task pending and due — ``stats()`` must find the oldest one) and a
mostly finished queue (95% succeeded, set by one UPDATE on SQLite; on Redis the counts are a
hash, so only the backlog is measured). Median and p95 of sequential scrapes, against the
100 ms target and against the same scrape of an empty queue (the reference).

    python benchmarks/dashboard.py [--quick] [--tasks N]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qakeapi.metrics import metrics_app
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks._serialization import encode_call
from qakeapi.types import TaskRecord

REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TARGET_MS = 100.0
BATCH = 5_000
TASK_NAME = "benchapp:noop"


def _records(count: int, start: int) -> list[TaskRecord]:
    args, kwargs = encode_call(TASK_NAME, (0,), {})
    now = time.time()
    return [TaskRecord(id=f"{start + i:013x}{uuid.uuid4().hex[:10]}", name=TASK_NAME,
                       args=args, kwargs=kwargs, created_at=now - 3600 + (start + i) * 1e-6)
            for i in range(count)]


async def fill(tasks: QueuedTasks, n: int) -> float:
    """Store ``n`` pending tasks in batches (one storage call each); seconds taken."""
    began = time.perf_counter()
    for start in range(0, n, BATCH):
        await tasks.storage.enqueue(_records(min(BATCH, n - start), start))
    return time.perf_counter() - began


async def scrape_ms(tasks: QueuedTasks, samples: int) -> list[float]:
    endpoint = metrics_app(tasks)
    transport = httpx.ASGITransport(app=endpoint)
    timings = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(samples):
            began = time.perf_counter()
            response = await client.get("/")
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200
    return timings


def report(label: str, timings: list[float], reference: float) -> None:
    median = statistics.median(timings)
    p95 = sorted(timings)[int(len(timings) * 0.95) - 1]
    print(f"{label}: median {median:.1f} ms, p95 {p95:.1f} ms — "
          f"{median / TARGET_MS:.2f}x of the {TARGET_MS:.0f} ms target, "
          f"{median / reference:.1f}x the empty queue's scrape")


async def scrape_section(url: str, backend: str, n: int, samples: int) -> None:
    async with QueuedTasks(url, embedded_worker=False) as tasks:
        reference = statistics.median(await scrape_ms(tasks, samples))
        print(f"{backend}: empty queue scrape (reference): median {reference:.2f} ms")
        seconds = await fill(tasks, n)
        print(f"{backend}: stored {n:,} pending tasks in {seconds:.1f} s")
        report(f"{backend}: metrics scrape, {n:,} tasks, all pending (backlog)",
               await scrape_ms(tasks, samples), reference)
        stats_ms = []
        for _ in range(samples):
            began = time.perf_counter()
            await tasks.stats()
            stats_ms.append((time.perf_counter() - began) * 1000)
        print(f"{backend}: of which stats(): median {statistics.median(stats_ms):.1f} ms")
        if backend == "sqlite":
            path = url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE tasks SET status = 'succeeded', finished_at = created_at "
                             "WHERE seq % 20 != 0")
            report(f"{backend}: metrics scrape, {n:,} tasks, 95% succeeded",
                   await scrape_ms(tasks, samples), reference)


def _clear_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
    for start in range(0, len(keys), 1_000):
        client.delete(*keys[start:start + 1_000])


async def main(n: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        await scrape_section(f"sqlite:///{Path(directory) / 'queue.db'}", "sqlite", n, samples)
    prefix = f"qakeapi-bench-{uuid.uuid4().hex[:8]}"
    url = f"{REDIS_URL}?prefix={prefix}"
    try:
        await scrape_section(url, "redis", n, samples)
    finally:
        _clear_redis(REDIS_URL, prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10,000 tasks, few samples")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    options = parser.parse_args()
    anyio.run(main, 10_000 if options.quick else options.tasks, 5 if options.quick else 31)
