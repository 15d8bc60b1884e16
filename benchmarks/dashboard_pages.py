"""The dashboard on a big queue: how long its pages take with N stored tasks, on SQLite and on
Redis. Pages are asked of the ASGI app in process (httpx's ASGI transport), so the figures are
the dashboard's and the storage's time, not the network's.

Each figure is the median of several requests, printed next to the reference measured in the
same run: one ``storage.get`` of a task (the least any page can cost). Nothing is asserted.

    python benchmarks/dashboard_pages.py [--quick] [--tasks N] [--runs N] [--only sqlite|redis]
                                         [--redis URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx

from qakeapi.dashboard import dashboard
from qakeapi.queued_tasks import QueuedTasks, QueueSettings
from qakeapi.queued_tasks.backends import QueueStorage, open_storage
from qakeapi.types import TaskRecord

BATCH = 5_000
TOKEN = "benchmark-dashboard-token"
NAMES = ("send_email", "resize_image", "sync_account", "rare_report")


def new_id(i: int) -> str:
    return f"{time.time_ns() // 1000:013x}{i:010x}"


async def fill(storage: QueueStorage, count: int) -> str:
    now = time.time() - count / 1000
    last = ""
    for start in range(0, count, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, count)):
            name = NAMES[3] if i % 1000 == 0 else NAMES[i % 3]
            last = new_id(i)
            batch.append(TaskRecord(id=last, name=name, args=[i], created_at=now + i / 1000))
        await storage.enqueue(batch)
    return last


async def median_ms(call: Callable[[], Awaitable[object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure(url: str, count: int, runs: int) -> None:
    storage = open_storage(url)
    await storage.connect()
    try:
        task_id = await fill(storage, count)
    finally:
        await storage.close()
    tasks = QueuedTasks(settings=QueueSettings(url=url, embedded_worker=False))
    app = dashboard(tasks, auth=TOKEN, background=False)
    async with tasks:
        reference = await median_ms(lambda: tasks.get(task_id), runs)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dash",
                                     headers={"X-Dashboard-Token": TOKEN}) as client:
            pages = {
                "overview": "/",
                "task list, first page": "/tasks",
                "task list, deep page (middle)": f"/tasks?after={count // 2}",
                "task list, state filter": "/tasks?status=pending",
                "task list, rare name": f"/tasks?name={NAMES[3]}",
                "task page": f"/task/{task_id}",
            }
            print(f"{url.split(':')[0]}: {count:,} tasks; reference storage.get "
                  f"{reference:.2f} ms")
            for label, path in pages.items():
                async def get(path: str = path) -> None:
                    response = await client.get(path)
                    response.raise_for_status()
                ms = await median_ms(get, runs)
                print(f"  {label:32s} {ms:9.1f} ms  ({ms / reference:7.0f}x reference)"
                      f"{'' if ms < 100 else '  over 100 ms'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small queue, few runs")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "redis"), help="one backend")
    parser.add_argument("--runs", type=int, default=7, help="requests per figure")
    parser.add_argument("--redis", default=os.environ.get(
        "QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    count, runs = (2_000, 3) if args.quick else (args.tasks, args.runs)
    if args.only != "redis":
        with tempfile.TemporaryDirectory() as directory:
            anyio.run(measure, f"sqlite:///{Path(directory) / 'bench.db'}", count, runs)
    if args.only == "sqlite":
        return
    prefix = f"bench-dashboard-{uuid.uuid4().hex[:8]}"
    redis_url = f"{args.redis}?prefix={prefix}"
    try:
        anyio.run(measure, redis_url, count, runs)
    finally:
        import redis

        client = redis.Redis.from_url(args.redis)
        for key in client.scan_iter(f"{prefix}*", count=10_000):
            client.delete(key)
        client.close()


if __name__ == "__main__":
    main()
