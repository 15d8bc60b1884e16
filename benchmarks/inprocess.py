"""In-process background tasks: qakeapi's manager against two floors in the same run.

Unbounded floor (the yardstick the targets are defined against): 64 asyncio worker
coroutines pulling the same jobs from an unbounded asyncio.Queue. Bounded floor: the same
workers on an asyncio.Queue of the manager's own pending capacity (``await queue.put``
blocks when full), i.e. the least a bounded pool can do; it is slower, so the ratio to it
looks better. For sync tasks the floors' workers call ``anyio.to_thread.run_sync`` (anyio's
default 40-thread limiter; the manager's own limiter has 40 threads too).
Peak RSS of each run is measured in a fresh subprocess.

    python benchmarks/inprocess.py            # N=200,000 async, 20,000 sync
    python benchmarks/inprocess.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time

import anyio
import anyio.to_thread

WORKERS = 64
TARGET_ASYNC = 0.30
TARGET_SYNC = 0.80
TARGET_RSS_MB = 60


async def noop() -> None:
    return None


def sync_noop() -> None:
    return None


async def floor(n: int, capacity: int, sync: bool) -> float:
    queue: asyncio.Queue[object] = asyncio.Queue(capacity)
    done = asyncio.Event()
    finished = 0

    async def worker() -> None:
        nonlocal finished
        while True:
            fn = await queue.get()
            if sync:
                await anyio.to_thread.run_sync(fn)  # type: ignore[arg-type]
            else:
                await fn()  # type: ignore[operator]
            finished += 1
            if finished == n:
                done.set()

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    start = time.perf_counter()
    job = sync_noop if sync else noop
    for _ in range(n):
        await queue.put(job)
    await done.wait()
    elapsed = time.perf_counter() - start
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return n / elapsed


async def qakeapi_run(n: int, sync: bool) -> float:
    from qakeapi.core.background import BackgroundTaskManager
    from qakeapi.types import TaskStatus

    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    fn = sync_noop if sync else noop
    async with manager.lifespan():
        start = time.perf_counter()
        last = ""
        for _ in range(n):
            last = await manager.add_task(fn)
        await manager.wait(last)
        while manager.counts()[TaskStatus.RUNNING] or manager.counts()[TaskStatus.PENDING]:
            await anyio.sleep(0.001)
        elapsed = time.perf_counter() - start
    return n / elapsed


def child(kind: str, n: int) -> None:
    from qakeapi.core.background import BackgroundTaskManager

    capacity = BackgroundTaskManager().settings.max_pending
    runs = {
        "unbounded-async": lambda: floor(n, 0, sync=False),
        "bounded-async": lambda: floor(n, capacity, sync=False),
        "unbounded-sync": lambda: floor(n, 0, sync=True),
        "bounded-sync": lambda: floor(n, capacity, sync=True),
        "qakeapi-async": lambda: qakeapi_run(n, sync=False),
        "qakeapi-sync": lambda: qakeapi_run(n, sync=True),
    }
    rate = asyncio.run(runs[kind]())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rate": rate, "peak_rss_mb": peak_mb}))


def measure(kind: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    n_async, n_sync = (2_000, 500) if args.quick else (200_000, 20_000)
    print(f"in-process background tasks (async N={n_async:,}, sync N={n_sync:,})")
    print(f"{'run':<18}{'tasks/s':>12}{'peak RSS MB':>14}")
    results = {}
    for mode, n in (("async", n_async), ("sync", n_sync)):
        for kind in (f"unbounded-{mode}", f"bounded-{mode}", f"qakeapi-{mode}"):
            results[kind] = measure(kind, n)
            print(f"{kind:<18}{results[kind]['rate']:>12,.0f}"
                  f"{results[kind]['peak_rss_mb']:>14.1f}")
    for mode, target in (("async", TARGET_ASYNC), ("sync", TARGET_SYNC)):
        rate = results[f"qakeapi-{mode}"]["rate"]
        unbounded = rate / results[f"unbounded-{mode}"]["rate"]
        bounded = rate / results[f"bounded-{mode}"]["rate"]
        print(f"ratio {mode}: {unbounded:.2f} of the unbounded floor (target >= {target:.2f}), "
              f"{bounded:.2f} of the bounded floor")
    print(f"peak RSS qakeapi async run: {results['qakeapi-async']['peak_rss_mb']:.1f} MB "
          f"(target < {TARGET_RSS_MB} MB for {n_async:,} tasks)")


if __name__ == "__main__":
    main()
