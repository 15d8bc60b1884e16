"""The dashboard and the metrics scrape on a big queue: N tasks (1,000,000 by default) stored
on SQLite and on Redis.

The queue is bulk-loaded (SQLite: ``executemany`` into the real schema, counted per chunk
as ``enqueue`` counts; Redis: pipelines writing the key layout the scripts keep — checked
against ``stats()`` and a page of each index after loading): 95% succeeded, 2% failed, 1%
cancelled, 2% pending, under three common names and one rare name (one task in 997, in every
state).

Each request goes through the ASGI apps in process (httpx's ASGI transport: the dashboard's
and the storage's time, not the network's): the task list's first page and page 500 (by
cursor), unfiltered, by state and by the rare name; a task page; the overview; the metrics
scrape (``metrics_app``). Median and p95 of sequential requests, against the 100 ms target
and against the same request on an empty queue of the same backend (the reference, same run:
a cursor holds only a position, so the deep pages' URLs are asked of the empty queue too).

    python benchmarks/dashboard.py [--quick] [--tasks N] [--samples N] [--only sqlite|redis]

Redis: keys under a fresh prefix of ``QAKEAPI_TEST_REDIS_URL`` (db 15 by default), deleted
afterwards (only that prefix).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qakeapi.dashboard import dashboard
from qakeapi.metrics import metrics_app
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks._serialization import dumps
from qakeapi.queued_tasks.backends._sqlite_connect import open_connection
from qakeapi.queued_tasks.backends._sqlite_counts import add_counts
from qakeapi.queued_tasks.backends._sqlite_schema import INSERT_SQL, row_from_record
from qakeapi.types import TaskRecord, TaskStatus

REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TARGET_MS = 100.0
TOKEN = "benchmark-dashboard-token"
NAMES = ("jobs:send_email", "jobs:resize_image", "jobs:sync_account")
RARE = "jobs:rare_report"
CHUNK = 20_000
DEEP_PAGE = 500


def status_of(i: int) -> TaskStatus:
    share = i % 100
    if share < 2:
        return TaskStatus.PENDING
    if share < 4:
        return TaskStatus.FAILED
    if share < 5:
        return TaskStatus.CANCELLED
    return TaskStatus.SUCCEEDED


def records(n: int, start: int, stop: int, t0: float) -> Iterator[TaskRecord]:
    """Task ``i`` of ``n``: created ``t0 + i`` ms, its state and name set by ``i``."""
    for i in range(start, stop):
        status = status_of(i)
        created = t0 + i / 1000
        finished = status is not TaskStatus.PENDING
        yield TaskRecord(
            id=f"{i:08d}{uuid.uuid4().hex[:12]}", name=RARE if i % 997 == 0 else NAMES[i % 3],
            args=[i, "report.pdf"], kwargs={"to": "someone@example.com"}, status=status,
            created_at=created, attempts=int(finished),
            started_at=created + 0.5 if finished else None,
            finished_at=created + 0.7 if finished else None,
            result={"ok": True, "bytes": i} if status is TaskStatus.SUCCEEDED else None,
            cancel_reason="not needed" if status is TaskStatus.CANCELLED else None)


def expected_counts(n: int) -> dict[TaskStatus, int]:
    counts = Counter(status_of(i) for i in range(n))
    return {s: counts.get(s, 0) for s in TaskStatus}


def load_sqlite(path: str, n: int, t0: float) -> None:
    conn = open_connection(path)
    try:
        for start in range(0, n, CHUNK):
            chunk = list(records(n, start, min(n, start + CHUNK), t0))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL, [row_from_record(r, 0) for r in chunk])
            add_counts(conn, Counter(r.status.value for r in chunk))
            conn.execute("COMMIT")
    finally:
        conn.close()


def load_redis(url: str, prefix: str, n: int, t0: float) -> None:
    """The hashes and sets the scripts of ``_redis_scripts`` keep, for finished and pending
    tasks (none running): written by pipelines instead of one script per batch."""
    import redis

    client = redis.Redis.from_url(url)
    counts: Counter[str] = Counter()
    for start in range(0, n, CHUNK):
        pipe = client.pipeline(transaction=False)
        sets: dict[str, dict[str, float]] = {}
        for i, r in enumerate(records(n, start, min(n, start + CHUNK), t0), start):
            fixed = {"name": r.name, "args": list(r.args), "kwargs": r.kwargs, "max_retries": 0,
                     "timeout": None, "priority": 0, "created_at": r.created_at, "parents": [],
                     "unique_key": None, "auto_remove": False}
            status = r.status.value
            rm = f"{i + 1:015d}|{r.id}"
            fields = {"s": json.dumps(fixed, separators=(",", ":")), "status": status,
                      "attempts": str(r.attempts), "score": repr(r.created_at), "rm": rm,
                      "due": repr(r.created_at), "run_at": "", "waiting": "0", "mr": "0",
                      "uk": "", "parents": "", "cancel_requested": "0", "nm": r.name,
                      "worker_id": "", "lease": ""}
            if r.finished_at is not None:
                fields |= {"started_at": repr(r.started_at), "finished_at": repr(r.finished_at),
                           "result": "" if r.result is None else dumps(r.result),
                           "error": "", "cancel_reason": r.cancel_reason or ""}
            pipe.hset(f"{prefix}:t:{r.id}", mapping=fields)
            for index in ("all", f"nm:{r.name}", f"st:{status}", f"ns:{status}:{r.name}"):
                sets.setdefault(index, {})[r.id] = r.created_at
            if r.finished_at is not None:
                sets.setdefault("done", {})[r.id] = r.finished_at
            else:
                sets.setdefault("ready", {})[rm] = r.created_at
                sets.setdefault("readytime", {})[r.id] = r.created_at
            counts[status] += 1
        for index, members in sets.items():  # one ZADD per set and chunk
            pipe.zadd(f"{prefix}:{index}", members)
        pipe.execute()
    client.hset(f"{prefix}:counts", mapping=dict(counts))
    client.set(f"{prefix}:seq", n)
    client.set(f"{prefix}:layout", "2")
    client.close()


async def check_loaded(tasks: QueuedTasks, n: int) -> None:
    """The bulk load left what the queue itself would have: counts and every index."""
    stats = await tasks.stats()
    assert stats.counts == expected_counts(n), (stats.counts, expected_counts(n))
    rare = Counter(status_of(i) for i in range(0, n, 997))
    for status in TaskStatus:
        page = await tasks.page(status=status, limit=3)
        assert len(page.records) == min(3, stats.counts[status]), status
        page = await tasks.page(status=status, name=RARE, limit=3)
        assert [r.name for r in page.records] == [RARE] * min(3, rare[status]), status


async def deep_cursor(tasks: QueuedTasks, page_number: int, **filters: object) -> str | None:
    """The cursor of page ``page_number`` (1 = the first), read page by page."""
    cursor = None
    for _ in range(page_number - 1):
        page = await tasks.page(limit=50, cursor=cursor, **filters)  # type: ignore[arg-type]
        if page.older is None:
            break
        cursor = page.older
    return cursor


async def requests_of(tasks: QueuedTasks, n: int) -> dict[str, str]:
    """The URLs to time: ``dash:`` for the dashboard, ``metrics:`` for the scrape."""
    pages = max(2, min(DEEP_PAGE, n // 100))
    rare_pages = max(2, n // 997 // 50 // 2)
    deep = await deep_cursor(tasks, pages)
    middle = (await tasks.page(limit=1, cursor=deep)).records
    task_id = middle[0].id if middle else "none"
    deep_state = await deep_cursor(tasks, pages, status=TaskStatus.SUCCEEDED)
    deep_rare = await deep_cursor(tasks, rare_pages, name=RARE)
    wanted = {
        "task list, first page": "dash:/tasks",
        f"task list, page {pages} (cursor)": f"dash:/tasks?cursor={deep}",
        "state filter (pending), first page": "dash:/tasks?status=pending",
        f"state filter (succeeded), page {pages}":
            f"dash:/tasks?status=succeeded&cursor={deep_state}",
        "rare name, first page": f"dash:/tasks?name={RARE}",
        f"rare name, page {rare_pages}": f"dash:/tasks?name={RARE}&cursor={deep_rare}",
        "rare name + state (failed)": f"dash:/tasks?name={RARE}&status=failed",
        "task page": f"dash:/task/{task_id}",
        "overview": "dash:/",
        "metrics scrape": "metrics:/",
    }
    return {label: url for label, url in wanted.items() if "cursor=None" not in url}


async def time_requests(url: str, wanted: dict[str, str], samples: int
                        ) -> dict[str, list[float]]:
    tasks = QueuedTasks(url, embedded_worker=False)
    out: dict[str, list[float]] = {}
    async with tasks:
        apps = {"dash": dashboard(tasks, auth=TOKEN, background=False),
                "metrics": metrics_app(tasks)}
        clients = {kind: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                           base_url="http://bench",
                                           headers={"X-Dashboard-Token": TOKEN})
                   for kind, app in apps.items()}
        try:
            for label, target in wanted.items():
                kind, path = target.split(":", 1)
                timings = []
                for _ in range(samples):
                    began = time.perf_counter()
                    response = await clients[kind].get(path)
                    timings.append((time.perf_counter() - began) * 1000)
                    assert response.status_code in (200, 404), (label, response.status_code,
                                                                response.text[:300])
                out[label] = timings
        finally:
            for client in clients.values():
                await client.aclose()
    return out


def p95(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


async def section(backend: str, big: str, empty: str, n: int, samples: int) -> None:
    async with QueuedTasks(big, embedded_worker=False) as tasks:
        await check_loaded(tasks, n)
        wanted = await requests_of(tasks, n)
    measured = await time_requests(big, wanted, samples)
    reference = await time_requests(empty, wanted, samples)
    print(f"{backend}: {n:,} tasks; median / p95 of {samples} requests; "
          f"reference: the same request on an empty {backend} queue")
    print(f"  {'request':40s} {'median':>9s} {'p95':>9s}  {'target':>9s}  {'empty queue':>11s}")
    for label, timings in measured.items():
        median = statistics.median(timings)
        ref = statistics.median(reference[label])
        verdict = "ok" if median < TARGET_MS else "OVER 100 ms"
        print(f"  {label:40s} {median:7.1f}ms {p95(timings):7.1f}ms  "
              f"{median / TARGET_MS:8.2f}x  {median / ref:9.1f}x  {verdict}")


async def run_sqlite(n: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        big, empty = Path(directory) / "big.db", Path(directory) / "empty.db"
        began = time.perf_counter()
        load_sqlite(str(big), n, time.time() - n / 1000 - 60)
        print(f"sqlite: bulk-loaded {n:,} tasks in {time.perf_counter() - began:.1f} s "
              f"({big.stat().st_size / 1e6:,.0f} MB)")
        open_connection(str(empty)).close()
        await section("sqlite", f"sqlite:///{big}", f"sqlite:///{empty}", n, samples)


def delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    batch = []
    for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
        batch.append(key)
        if len(batch) == 5_000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)
    client.close()


async def run_redis(n: int, samples: int) -> None:
    big, empty = (f"qakeapi-bench-{uuid.uuid4().hex[:8]}" for _ in range(2))
    separator = "&" if "?" in REDIS_URL else "?"
    try:
        began = time.perf_counter()
        load_redis(REDIS_URL, big, n, time.time() - n / 1000 - 60)
        print(f"redis: bulk-loaded {n:,} tasks in {time.perf_counter() - began:.1f} s")
        await section("redis", f"{REDIS_URL}{separator}prefix={big}",
                      f"{REDIS_URL}{separator}prefix={empty}", n, samples)
    finally:
        delete_prefix(big)
        delete_prefix(empty)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 tasks, 3 requests each")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=21, help="requests per figure")
    parser.add_argument("--only", choices=("sqlite", "redis"))
    options = parser.parse_args()
    n, samples = (5_000, 3) if options.quick else (options.tasks, options.samples)
    if options.only != "redis":
        anyio.run(run_sqlite, n, samples)
    if options.only != "sqlite":
        anyio.run(run_redis, n, samples)


if __name__ == "__main__":
    main()
