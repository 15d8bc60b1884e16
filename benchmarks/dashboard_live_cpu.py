"""What an open live dashboard page costs the workers: a real worker process drains N no-op
tasks (20,000 by default) on SQLite and on Redis, with no page open and with one live page
open — a server-sent-events connection to the dashboard served by ``qakeapi queue dashboard``
in another process, reconnecting as a browser does.

The figure (issue 11's yardstick) is the WORKER process's CPU seconds while it drains the
queue (read from ``/proc/<pid>/stat``; its start-up is not counted), live page against no
page, and its target is < 1% extra. The same drain's CPU time varies by 10-20% from run to
run on this VM with the same system calls to 0.01%, so runs come in blocks of four — no page,
no page again, page, and amplified pages — in an order that rotates from block to block. The
amplified pages raise the dose until what it adds could rise above the noise: a page open on
each of three dashboards asked to poll every 0.01 s instead of every second (about 50 times
one page's reads of storage, counted from the updates they receive while the worker drains).
A page reaches the worker only through its reads (it is served by another process), so one
page adds at most that count's share of what they add. The script prints, beside the medians
of each kind:

- the paired difference page/no page of each block: its median and mean, each with a 95%
  bootstrap confidence interval (the target is met when the upper bound is < +1%);
- the same for the amplified pages, and the bound it puts on one page (its upper bound
  divided by the ratio of their reads to one page's);
- the A/A control: the same difference between the block's two no-page runs, its noise floor;
- the same for lower-noise counts of the worker's work: its read/write system calls and
  bytes (``/proc/<pid>/io``: the storage work a reader could add, e.g. through delayed WAL
  checkpoints; SQLite only, socket calls are not counted there) and its main thread's
  voluntary context switches (each wait for storage or for work). Hardware instruction
  counters (``perf stat -e instructions``) are not supported on this VM.

The worker is started and idle first, stopped (SIGSTOP) while the N tasks are added, and
measured from SIGCONT to the empty queue: the drain is its own, not interleaved with the
enqueueing process's writes. The harness reads the queue only once the worker's CPU time stops
rising, so its own reads do not blur the comparison.

    python benchmarks/dashboard_live_cpu.py [--quick] [--tasks N] [--blocks N]
                                            [--only sqlite|redis]
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
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import httpx
from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._paired import block_orders, difference
from benchmarks._process_counters import VALGRIND, Sample, cpu_seconds, instructions, sample
from benchmarks._servers import env, free_port
from qakeapi.constants import DASHBOARD_POLL_SECONDS
from qakeapi.exceptions import QueueError
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.types import TaskStatus

REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TOKEN = "benchmark-live-cpu-token"
TARGET = 0.01
IDLE_CHECK_SECONDS = 0.2  # how often the harness looks at the worker's CPU time
IDLE_SHARE = 0.25  # below this share of a core, the worker may have run out of work
AMPLIFIED = 100  # the amplified pages' dashboards are asked to poll this many times as often
AMPLIFIED_FEEDS = 3  # ... and there are this many of them, each with its own poll
ATTEMPTS = 3
SLOW = 600  # seconds a worker under valgrind may take to start or to stop
NONE, NONE_AGAIN, PAGE, AMPLIFIED_PAGE = ("no page", "no page again", "page",
                                          f"{AMPLIFIED_FEEDS} pages polling {AMPLIFIED}x")
APP = '''
from qakeapi import QakeAPI

app = QakeAPI()


async def noop(i):
    return None
'''
AMPLIFIED_DASHBOARD = '''
import contextlib
import os

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from qakeapi.dashboard import _live
from qakeapi.dashboard._access import Access
from qakeapi.dashboard._app import DashboardApp
from qakeapi.dashboard._data import Source
from qakeapi.queued_tasks import QueuedTasks

# What `qakeapi queue dashboard` serves, polling more often than dashboard() allows and
# without spacing its polls by ten times their duration, several times over (/0, /1, ...:
# each dashboard has its own poll).
_live.DASHBOARD_POLL_BACKOFF = 1
tasks = QueuedTasks(os.environ["BENCH_URL"], embedded_worker=False)
dashboards = [DashboardApp(Source(tasks, None, None), Access(os.environ["BENCH_TOKEN"]),
                           read_only=True, poll_interval=float(os.environ["BENCH_POLL"]))
              for _ in range(int(os.environ["BENCH_FEEDS"]))]


@contextlib.asynccontextmanager
async def lifespan(app):
    async with tasks.lifespan():
        yield


app = Starlette(lifespan=lifespan,
                routes=[Mount(f"/{i}", d) for i, d in enumerate(dashboards)])
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), log_level="warning")
'''


@contextmanager
def process(command: list[str], directory: Path, wrapper: Sequence[str] = (),
            extra_env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``python <command>`` in ``directory`` (its process group ended on leaving)."""
    child = subprocess.Popen([*wrapper, sys.executable, *command], cwd=directory,
                             env=env(directory, **(extra_env or {})), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield child
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(SLOW if wrapper else 30)


@dataclass(slots=True)
class PageUpdates:
    """The live updates a page received: all of them, and those while the worker drained
    (each is one read of storage that found a change: the dose the page gave)."""

    seen: int = 0
    while_draining: int = 0
    draining_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> None:
        """One more update (called by each page's thread)."""
        with self.lock:
            self.seen += 1

    def rate(self) -> float:
        return self.while_draining / max(self.draining_seconds, 1e-9)


@contextmanager
def live_page(bases: list[str], updates: PageUpdates) -> Iterator[None]:
    """An open live overview page on each dashboard of ``bases``: one SSE connection at a
    time, reopened when the server ends it (every few seconds), as the browser does,
    counting ``updates``."""
    stop = threading.Event()

    def watch(base: str) -> None:
        with httpx.Client(base_url=base, headers={"X-Dashboard-Token": TOKEN},
                          timeout=30) as client:
            while not stop.is_set():
                try:
                    with client.stream("GET", "/live") as response:
                        for line in response.iter_lines():
                            if line.startswith("event: update"):
                                updates.received()
                            if stop.is_set():
                                return
                except httpx.HTTPError as exc:
                    print(f"  (live page reconnects: {exc!r})", file=sys.stderr)
                    time.sleep(0.5)

    threads = [threading.Thread(target=watch, args=(base,), daemon=True) for base in bases]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


def wait_for_server(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/", headers={"X-Dashboard-Token": TOKEN}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard at {base} never answered")
        time.sleep(0.1)


MEASURES: list[tuple[str, Callable[[Sample], float]]] = [
    ("worker CPU s (/proc stat: THE FIGURE)", lambda s: s.cpu),
    ("worker read+write syscalls", lambda s: s.syscalls),
    ("worker bytes read+written", lambda s: s.io_bytes),
    ("worker main thread's voluntary context switches", lambda s: s.switches),
]
INSTRUCTIONS: list[tuple[str, Callable[[Sample], float]]] = [
    ("worker instructions (valgrind, whole life)", lambda s: s.instructions),
    ("worker CPU s under valgrind", lambda s: s.cpu),
]


def stop_outside_transactions(pid: int, url: str) -> None:
    """SIGSTOP the worker at a moment it holds no SQLite write lock (a heartbeat's), so the
    tasks can be added while it is stopped."""
    if not url.startswith("sqlite:"):
        os.kill(pid, signal.SIGSTOP)
        return
    path = url.removeprefix("sqlite:///")
    while True:
        os.kill(pid, signal.SIGSTOP)
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
        finally:
            probe.close()


async def drain_once(url: str, directory: Path, n: int, counted: bool = False,
                     page: PageUpdates | None = None) -> Sample:
    """Start a worker, wait until it is idle and registered, stop it, add ``n`` tasks, let
    it go and wait for the queue to empty: what the worker spent in between. ``counted``:
    run the worker under valgrind and add the instructions of its whole life. ``page``: the
    open page's updates, to count those received while the worker drained."""
    page = page or PageUpdates()
    sys.path.insert(0, str(directory))
    import benchapp  # type: ignore[import-not-found]

    command = ["-m", "qakeapi", "queue", "start", "--app", "benchapp:app", "--url", url,
               "--concurrency", "32"]
    log = directory / f"valgrind-{uuid.uuid4().hex[:8]}.log"
    wrapper = [*VALGRIND, f"--log-file={log}"] if counted else []
    async with QueuedTasks(url, embedded_worker=False) as tasks:
        with process(command, directory, wrapper) as worker:
            deadline = time.monotonic() + (SLOW if counted else 30)
            while not any(w.pid == worker.pid for w in await tasks.workers()):
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker never registered")
                await anyio.sleep(0.05)
            await anyio.sleep(0.5)  # start-up done: from here on its CPU is the drain's
            stop_outside_transactions(worker.pid, url)
            try:
                for i in range(n):
                    tasks.add_task(benchapp.noop, i)
                await tasks.flush()
            finally:
                before = sample(worker.pid)
                seen, started = page.seen, time.monotonic()
                os.kill(worker.pid, signal.SIGCONT)
            await drained(tasks, worker.pid)
            spent = sample(worker.pid) - before
            page.while_draining += page.seen - seen
            page.draining_seconds += time.monotonic() - started
        if counted:
            spent = replace(spent, instructions=instructions(log))
        await tasks.purge()
    return spent


async def purge(url: str) -> None:
    async with QueuedTasks(url, embedded_worker=False) as tasks:
        await tasks.purge()


def empty_queue(url: str, directory: Path) -> None:
    """Delete what a failed run left: its pending tasks (``queue clear``) and ended ones."""
    subprocess.run([sys.executable, "-m", "qakeapi", "queue", "clear", "--url", url, "--yes"],
                   cwd=directory, env=env(directory), check=True, capture_output=True)
    anyio.run(purge, url)


async def drained(tasks: QueuedTasks, pid: int) -> None:
    """Return once the queue is empty, reading it only when the worker's CPU time has
    stopped rising (it is out of work, or waiting)."""
    last = cpu_seconds(pid)
    while True:
        await anyio.sleep(IDLE_CHECK_SECONDS)
        now = cpu_seconds(pid)
        busy, last = now - last > IDLE_SHARE * IDLE_CHECK_SECONDS, now
        if busy:
            continue
        counts = (await tasks.stats()).counts
        if counts[TaskStatus.PENDING] + counts[TaskStatus.RUNNING] == 0:
            return


def drain_again(url: str, directory: Path, n: int, counted: bool,
                page: PageUpdates | None = None) -> Sample:
    """:func:`drain_once`, run again (up to ``ATTEMPTS`` times, on an emptied queue) when the
    storage fails: a shared Redis is sometimes busy with another client's long script."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return anyio.run(drain_once, url, directory, n, counted, page)
        except (QueueError, RedisError) as exc:
            print(f"  (run failed, attempt {attempt} of {ATTEMPTS}: {exc!r})", file=sys.stderr)
            if attempt == ATTEMPTS:
                raise
            time.sleep(5)
            empty_queue(url, directory)
    raise AssertionError("unreachable")


def report(backend: str, n: int, runs: dict[str, list[Sample]],
           updates: dict[str, PageUpdates],
           measures: list[tuple[str, Callable[[Sample], float]]]) -> None:
    blocks = len(runs[PAGE])
    cpu = {kind: [s.cpu for s in samples] for kind, samples in runs.items()}
    spread = {kind: f"{min(values):.2f}-{max(values):.2f}" for kind, values in cpu.items()}
    no_page = statistics.median(cpu[NONE] + cpu[NONE_AGAIN])
    under = " (worker UNDER VALGRIND)" if measures is INSTRUCTIONS else ""
    print(f"{backend}{under}: worker CPU draining {n:,} no-op tasks, {blocks} blocks of "
          f"{len(runs)} runs ({', '.join(runs)}; order rotating)")
    print(f"  no page open:          {no_page:7.3f} s median of {2 * blocks} runs "
          f"(range {spread[NONE]} / {spread[NONE_AGAIN]})")
    for kind in (PAGE, AMPLIFIED_PAGE):
        print(f"  {kind + ':':22} {statistics.median(cpu[kind]):7.3f} s median of {blocks} "
              f"runs (range {spread[kind]}; {updates[kind].seen} live updates received, "
              f"{updates[kind].rate():.1f}/s while the worker drained)")
    dose = updates[AMPLIFIED_PAGE].rate() / max(updates[PAGE].rate(), 1e-9)
    print(f"  while the worker drained, the amplified pages read storage {dose:.1f}x as "
          f"often as the page")
    print(f"  ratio page/none:       {statistics.median(cpu[PAGE]) / no_page:7.3f}  "
          f"(medians of each kind)")
    for index, (name, measure) in enumerate(measures):
        reference = [measure(s) for s in runs[NONE]]
        page, amplified, control = (difference(reference, [measure(s) for s in runs[kind]])
                                    for kind in (PAGE, AMPLIFIED_PAGE, NONE_AGAIN))
        print(f"  {name}:")
        if page is None or amplified is None or control is None:
            print("    (zero in every run: not counted for this backend)")
            continue
        print(f"    page/none - 1  (paired):   {page.line()}")
        print(f"    amplified/none - 1:        {amplified.line()}")
        print(f"    A/A none/none - 1 (noise): {control.line()}")
        if measures is MEASURES and index == 0:
            verdicts(page.median_ci, amplified.median_ci, dose)


def verdicts(page: tuple[float, float], amplified: tuple[float, float], dose: float) -> None:
    """The target read two ways: from the page's own CI, and from the amplified page's (one
    page adds at most 1/``dose`` of what a page reading ``dose`` times as often adds)."""
    def verdict(low: float, high: float) -> str:
        return "ok" if high < TARGET else ("OVER" if low >= TARGET else "not resolved")

    print(f"    target < +{TARGET:.0%} extra worker CPU, from the page's runs: upper bound of "
          f"the median's CI {page[1]:+.2%}: {verdict(*page)}")
    low, high = (max(0.0, bound) / dose for bound in amplified)
    print(f"    target < +{TARGET:.0%} extra worker CPU, from the amplified pages' runs: "
          f"one page adds at most {high:+.3%} (its upper bound / {dose:.1f}, the reads' "
          f"ratio): {verdict(low, high)}")


@contextmanager
def dashboards(url: str, directory: Path) -> Iterator[dict[str, list[str]]]:
    """The dashboard as ``qakeapi queue dashboard`` serves it, and ``AMPLIFIED_FEEDS`` of the
    same asked to poll ``AMPLIFIED`` times as often; yields each page kind's base URLs."""
    ports = {PAGE: free_port(), AMPLIFIED_PAGE: free_port()}
    bases = {PAGE: [f"http://127.0.0.1:{ports[PAGE]}"],
             AMPLIFIED_PAGE: [f"http://127.0.0.1:{ports[AMPLIFIED_PAGE]}/{i}"
                              for i in range(AMPLIFIED_FEEDS)]}
    (directory / "benchdash.py").write_text(textwrap.dedent(AMPLIFIED_DASHBOARD))
    standard = ["-m", "qakeapi", "queue", "dashboard", "--url", url, "--port",
                str(ports[PAGE]), "--token", TOKEN]
    amplified_env = {"BENCH_URL": url, "BENCH_TOKEN": TOKEN,
                     "BENCH_POLL": str(DASHBOARD_POLL_SECONDS / AMPLIFIED),
                     "BENCH_PORT": str(ports[AMPLIFIED_PAGE]),
                     "BENCH_FEEDS": str(AMPLIFIED_FEEDS)}
    with process(standard, directory), \
            process(["benchdash.py"], directory, extra_env=amplified_env):
        for base in [*bases[PAGE], *bases[AMPLIFIED_PAGE]]:
            wait_for_server(base)
        yield bases


def measure(backend: str, url: str, directory: Path, n: int, blocks: int,
            counted: bool) -> None:
    anyio.run(drain_once, url, directory, 100)  # makes the queue (and warms the disk cache)
    runs: dict[str, list[Sample]] = {NONE: [], NONE_AGAIN: [], PAGE: [], AMPLIFIED_PAGE: []}
    updates = {PAGE: PageUpdates(), AMPLIFIED_PAGE: PageUpdates()}
    with dashboards(url, directory) as bases:
        for order in block_orders(list(runs), blocks):
            for kind in order:
                if kind not in bases:
                    runs[kind].append(drain_again(url, directory, n, counted))
                    continue
                with live_page(bases[kind], updates[kind]):
                    runs[kind].append(drain_again(url, directory, n, counted, updates[kind]))
    report(backend, n, runs, updates, INSTRUCTIONS if counted else MEASURES)


def delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
    for start in range(0, len(keys), 1_000):
        client.unlink(*keys[start:start + 1_000])
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 tasks, two blocks")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--blocks", type=int, default=24,
                        help="blocks of four runs (no page, no page, page, amplified page), "
                             ">= 2")
    parser.add_argument("--only", choices=("sqlite", "redis"))
    parser.add_argument("--instructions", action="store_true",
                        help="count the worker's instructions under valgrind instead (about "
                             "50x slower: use few blocks)")
    options = parser.parse_args()
    n, blocks = (1_000, 2) if options.quick else (options.tasks, max(2, options.blocks))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "benchapp.py").write_text(textwrap.dedent(APP))
        if options.only != "redis":
            measure("sqlite", f"sqlite:///{directory / 'queue.db'}", directory, n, blocks,
                    options.instructions)
        if options.only != "sqlite":
            prefix = f"qakeapi-bench-{uuid.uuid4().hex[:8]}"
            separator = "&" if "?" in REDIS_URL else "?"
            try:
                measure("redis", f"{REDIS_URL}{separator}prefix={prefix}", directory, n, blocks,
                    options.instructions)
            finally:
                delete_prefix(prefix)


if __name__ == "__main__":
    main()
