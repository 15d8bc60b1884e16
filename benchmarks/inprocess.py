"""In-process background tasks: qakeapi's manager against a floor in the same run.

Floor: 64 asyncio worker coroutines pulling the same jobs from a bounded asyncio.Queue of the
manager's own pending capacity (``await queue.put``), i.e. the least a bounded pool can do.
For sync tasks the floor's workers call ``anyio.to_thread.run_sync`` (anyio's default
40-thread limiter; the manager's own limiter has 40 threads too).
Peak RSS of each 200,000-task run is measured in a fresh subprocess.

    python benchmarks/inprocess.py            # N=200,000 async, 20,000 sync
    python benchmarks/inprocess.py --quick    # a smoke run
"""

from __future__ import annotations

import os
import sys

# benchmarks/http.py would shadow the stdlib "http" package for scripts run from this folder.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

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
        "floor-async": lambda: floor(n, capacity, sync=False),
        "floor-sync": lambda: floor(n, capacity, sync=True),
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
    print(f"{'run':<16}{'tasks/s':>12}{'peak RSS MB':>14}")
    results = {}
    for kind, n in (("floor-async", n_async), ("qakeapi-async", n_async),
                    ("floor-sync", n_sync), ("qakeapi-sync", n_sync)):
        results[kind] = measure(kind, n)
        print(f"{kind:<16}{results[kind]['rate']:>12,.0f}{results[kind]['peak_rss_mb']:>14.1f}")
    ratio_async = results["qakeapi-async"]["rate"] / results["floor-async"]["rate"]
    ratio_sync = results["qakeapi-sync"]["rate"] / results["floor-sync"]["rate"]
    print(f"ratio async: {ratio_async:.2f} (target >= 0.20)")
    print(f"ratio sync: {ratio_sync:.2f} (target >= 0.80)")
    print(f"peak RSS qakeapi async run: {results['qakeapi-async']['peak_rss_mb']:.1f} MB "
          f"(target < 100 MB)")


if __name__ == "__main__":
    main()
