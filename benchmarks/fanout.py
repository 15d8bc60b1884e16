"""Fan-out: how long one parent with N children holds the backend when it is cancelled,
requeued (reviving the children) and succeeds (releasing them).

While each operation runs, a probe on a second connection does one tiny write in a loop
(SQLite: ``BEGIN IMMEDIATE`` + update + commit; Redis: ``INCR``) and records its worst
latency: the longest time the backend was held by one step. Redis also reports the
longest script in ``SLOWLOG``. Figures are printed, never asserted.

    python benchmarks/fanout.py [--quick] [--children N] [--redis URL]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import redis

from qakeapi.queued_tasks.backends import QueueStorage, open_storage
from qakeapi.types import TaskOutcome, TaskRecord, TaskStatus

BATCH = 5_000


class Probe:
    """Does one tiny write after another on its own connection; keeps the worst latency."""

    def __init__(self, write: Callable[[], None]) -> None:
        self.write = write
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            self.write()
            self.worst = max(self.worst, time.perf_counter() - start)
            time.sleep(0.001)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def new_id() -> str:
    """Time-sortable, like the queue's own ids (children of one parent sit together)."""
    return f"{time.time_ns() // 1000:013x}{os.urandom(5).hex()}"


def sqlite_probe(path: str) -> Probe:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)

    def write() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO workers (id, info) VALUES ('probe', '{}')")
        conn.execute("COMMIT")

    return Probe(write)


def redis_probe(client: redis.Redis) -> Probe:
    return Probe(lambda: client.incr("fanout-probe"))


async def fill(storage: QueueStorage, children: int) -> str:
    parent = TaskRecord(id=new_id(), name="bench:parent", created_at=time.time())
    await storage.enqueue([parent])
    for start in range(0, children, BATCH):
        await storage.enqueue([
            TaskRecord(id=new_id(), name="bench:child", created_at=time.time(),
                       parents=(parent.id,)) for _ in range(min(BATCH, children - start))])
    return parent.id


async def measure(label: str, probe: Probe, step: Callable[[], Awaitable[object]],
                  slowlog: redis.Redis | None) -> None:
    if slowlog is not None:
        slowlog.config_set("slowlog-log-slower-than", 1000)
        slowlog.slowlog_reset()
    with probe:
        await anyio.sleep(0.05)
        start = time.perf_counter()
        await step()
        total = time.perf_counter() - start
        await anyio.sleep(0.05)
    line = (f"{label:<28} total {total * 1000:8.1f} ms   worst probe wait "
            f"{probe.worst * 1000:7.1f} ms")
    if slowlog is not None:
        entries = slowlog.slowlog_get(1000)
        longest = max((e["duration"] for e in entries), default=0) / 1000
        line += f"   longest Redis command {longest:7.1f} ms"
    print(line, flush=True)


async def run_backend(name: str, url: str, children: int, make_probe: Callable[[], Probe],
                      slowlog: redis.Redis | None) -> None:
    storage = open_storage(url)
    await storage.connect()
    try:
        parent = await fill(storage, children)
        await measure(f"{name}: cancel parent", make_probe(),
                      lambda: storage.cancel(parent, "bench"), slowlog)
        await measure(f"{name}: requeue parent", make_probe(),
                      lambda: storage.requeue(parent), slowlog)
        [claimed] = await storage.claim("bench", 1, 60)
        assert claimed.id == parent
        await measure(f"{name}: parent succeeds", make_probe(),
                      lambda: storage.finish("bench", [TaskOutcome(parent,
                                                                   TaskStatus.SUCCEEDED)]),
                      slowlog)
        stats = await storage.stats()
        print(f"{name}: after success {stats.counts[TaskStatus.PENDING]} children pending "
              f"(due), {stats.counts[TaskStatus.CANCELLED]} cancelled", flush=True)
    finally:
        await storage.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--redis", default=os.environ.get("QAKEAPI_TEST_REDIS_URL",
                                                          "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    children = 2_000 if args.quick else args.children
    print(f"fan-out of {children} children", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "queue.db")
        await run_backend("sqlite", f"sqlite:///{path}", children,
                          lambda: sqlite_probe(path), None)
    client = redis.Redis.from_url(args.redis)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"redis: skipped ({exc})")
        return
    prefix = f"fanout-{uuid.uuid4().hex[:8]}"
    try:
        await run_backend("redis", f"{args.redis}?prefix={prefix}", children,
                          lambda: redis_probe(redis.Redis.from_url(args.redis)), client)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
        client.delete("fanout-probe")


if __name__ == "__main__":
    anyio.run(main)
