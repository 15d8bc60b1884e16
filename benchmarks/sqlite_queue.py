"""SQLite queue: qakeapi against huey's SQLite storage, in the same run, on the same disk.

N no-op tasks: enqueue time, then drain time with one worker process at concurrency 32, and
with two processes; the same N through huey (``SqliteHuey``, consumer with 32 threads).
Drain times are wall clock from starting the worker process(es) until the queue is empty,
polled every 10 ms, for both. Then idle latency: from ``add_task`` to the task's start on an
idle worker process (median and p99 of sequential samples).

    python benchmarks/sqlite_queue.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio
from _servers import env

APP = '''
from qakeapi import QakeAPI

app = QakeAPI()


async def noop(i):
    return None
'''

HUEY_APP = '''
from huey import SqliteHuey

huey = SqliteHuey(filename={path!r})


@huey.task()
def noop(i):
    return None
'''


def enqueue_qakeapi(directory: Path, url: str, n: int) -> float:
    sys.path.insert(0, str(directory))
    import benchapp  # type: ignore[import-not-found]

    from qakeapi.queued_tasks import QueuedTasks

    async def main() -> float:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            start = time.perf_counter()
            for i in range(n):
                tasks.add_task(benchapp.noop, i)
            await tasks.flush()
            return time.perf_counter() - start

    return anyio.run(main)


def unfinished(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM tasks WHERE status IN "
                                "('pending', 'running')").fetchone()[0])


def drain_qakeapi(directory: Path, db: Path, processes: int) -> float:
    start = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "start", "--app", "benchapp:app", "--url",
         f"sqlite:///{db}", "--concurrency", "32", "--workers", str(processes)],
        cwd=directory, env=env(directory), stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while unfinished(db):
            time.sleep(0.01)
        return time.perf_counter() - start
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


LEAN = ("DROP TRIGGER task_counts_delete; DROP INDEX tasks_named; "
        "DROP INDEX tasks_named_listed; DROP INDEX tasks_pending_oldest;")
"""What the dashboard adds to the schema (5): the name and oldest-due indexes, the trigger
that uncounts a deleted task. A queue without them measures what they cost each write; the
counts the storage code keeps per transaction (one UPSERT per status changed) stay."""


def write_cost(directory: Path, n: int, runs: int) -> tuple[float, float]:
    """Median enqueue and drain (1 process) ratios, schema 5 against schema 5 without the
    dashboard's indexes and delete trigger, alternating runs."""
    from qakeapi.queued_tasks.backends._sqlite_connect import open_connection

    timings: dict[str, list[tuple[float, float]]] = {"full": [], "lean": []}
    for run in range(runs):
        for kind in ("full", "lean"):
            db = directory / f"cost-{kind}-{run}.db"
            conn = open_connection(str(db))
            if kind == "lean":
                conn.executescript(LEAN)
            conn.close()
            timings[kind].append((enqueue_qakeapi(directory, f"sqlite:///{db}", n),
                                  drain_qakeapi(directory, db, 1)))
    full, lean = (tuple(statistics.median(t[i] for t in timings[k]) for i in (0, 1))
                  for k in ("full", "lean"))
    return full[0] / lean[0], full[1] / lean[1]


def huey_run(directory: Path, n: int) -> tuple[float, float]:
    db = directory / "huey.db"
    (directory / "hueyapp.py").write_text(textwrap.dedent(HUEY_APP.format(path=str(db))))
    sys.path.insert(0, str(directory))
    import hueyapp  # type: ignore[import-not-found]

    start = time.perf_counter()
    for i in range(n):
        hueyapp.noop(i)
    enqueue = time.perf_counter() - start
    start = time.perf_counter()
    consumer = subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "hueyapp.huey", "-w", "32", "-k",
         "thread", "-q"], cwd=directory, env=env(directory), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while hueyapp.huey.pending_count():
            time.sleep(0.01)
        return enqueue, time.perf_counter() - start
    finally:
        os.killpg(consumer.pid, signal.SIGTERM)
        consumer.wait(30)


def latency(directory: Path, db: Path, samples: int) -> list[float]:
    import benchapp

    from qakeapi.queued_tasks import QueuedTasks

    url = f"sqlite:///{db}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "start", "--app", "benchapp:app", "--url",
         url, "--concurrency", "32"], cwd=directory, env=env(directory),
        stderr=subprocess.DEVNULL, start_new_session=True)

    async def main() -> list[float]:
        out: list[float] = []
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            await anyio.sleep(1.0)
            for i in range(samples):
                ref = await tasks.enqueue(benchapp.noop, i)
                record = await ref.wait(10)
                assert record.started_at is not None
                out.append(record.started_at - record.created_at)
                await anyio.sleep(0.01)
        return out

    try:
        return anyio.run(main)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, samples = (500, 20) if args.quick else (20_000, 200)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "benchapp.py").write_text(textwrap.dedent(APP))
        rows = []
        db1 = directory / "one.db"
        enqueue_s = enqueue_qakeapi(directory, f"sqlite:///{db1}", n)
        drain_1 = drain_qakeapi(directory, db1, 1)
        db2 = directory / "two.db"
        enqueue_qakeapi(directory, f"sqlite:///{db2}", n)
        drain_2 = drain_qakeapi(directory, db2, 2)
        huey_enqueue, huey_drain = huey_run(directory, n)
        rows = [
            ("qakeapi enqueue", enqueue_s), ("qakeapi drain, 1 worker process", drain_1),
            ("qakeapi drain, 2 worker processes", drain_2), ("huey enqueue", huey_enqueue),
            ("huey drain, 1 consumer (32 threads)", huey_drain),
        ]
        print(f"SQLite queue, N={n:,} no-op tasks")
        print(f"{'run':<38}{'seconds':>9}{'tasks/s':>11}")
        for name, seconds in rows:
            print(f"{name:<38}{seconds:>9.2f}{n / seconds:>11,.0f}")
        print(f"drain ratio qakeapi/huey (1 process): {huey_drain / drain_1:.2f} "
              f"(target: >= 5,000 tasks/s and ahead of huey)")
        enqueue_cost, drain_cost = write_cost(directory, n, 3)
        print(f"write cost of the dashboard indexes and delete trigger (schema 5 against "
              f"schema 5 without them, median of 3 alternating runs): enqueue "
              f"{enqueue_cost:.2f}x, drain {drain_cost:.2f}x")
        lat = sorted(latency(directory, directory / "latency.db", samples))
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"idle latency add_task -> start: median {statistics.median(lat) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms (target p99 < 20 ms)")


if __name__ == "__main__":
    main()
