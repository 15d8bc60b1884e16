"""What an open live dashboard page costs the workers: a real worker process drains N no-op
tasks (20,000 by default) on SQLite and on Redis, with no page open and with one live page
open — a server-sent-events connection to the dashboard served by ``qakeapi queue dashboard``
in another process, reconnecting as a browser does.

The figure (issue 11's yardstick) is the WORKER process's CPU seconds while it drains the
queue (read from ``/proc/<pid>/stat``; its start-up is not counted), live page against no
page, and its target is < 1% extra. One run alone is 3-30% noisy on a shared 2-core machine,
so runs come in blocks of three — no page, no page again, page — in an order that rotates
from block to block, and the script prints, beside the medians of each kind:

- the paired difference page/no page of each block: its median and mean, each with a 95%
  bootstrap confidence interval (the target is met when the upper bound is < +1%);
- the A/A control: the same difference between the block's two no-page runs, its noise floor;
- the same for lower-noise counts of the worker's work: its read/write system calls and
  bytes (``/proc/<pid>/io``: the storage work a reader could add, e.g. through delayed WAL
  checkpoints; SQLite only, socket calls are not counted there) and its main thread's
  voluntary context switches (each wait for storage or for work). Hardware instruction
  counters (``perf stat -e instructions``) are not supported on this VM.

The worker is started and idle first, stopped (SIGSTOP) while the N tasks are added, and
measured from SIGCONT to the empty queue: the drain is its own, not interleaved with the
enqueueing process's writes.

    python benchmarks/dashboard_live_cpu.py [--quick] [--tasks N] [--blocks N]
                                            [--only sqlite|redis]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import httpx
from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._paired import block_orders, difference
from qakeapi.exceptions import QueueError
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.types import TaskStatus

REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TOKEN = "benchmark-live-cpu-token"
TARGET = 0.01
POLL_SECONDS = 0.1  # the harness's own reads of the queue: ten a second, not fifty
ATTEMPTS = 3
SLOW = 600  # seconds a worker under valgrind may take to start or to stop
VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
NONE, NONE_AGAIN, PAGE = "no page", "no page again", "page"
APP = '''
from qakeapi import QakeAPI

app = QakeAPI()


async def noop(i):
    return None
'''


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env(directory: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory),
                                                        os.environ.get("PYTHONPATH", "")]))


@contextmanager
def process(command: list[str], directory: Path,
            wrapper: Sequence[str] = ()) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([*wrapper, sys.executable, "-m", "qakeapi", *command],
                             cwd=directory, env=env(directory), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield child
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(SLOW if wrapper else 30)


@contextmanager
def live_page(base: str) -> Iterator[list[int]]:
    """An open live overview page: one SSE connection at a time, reopened when the server
    ends it (every few seconds), as the browser does. Yields the count of updates seen."""
    updates = [0]
    stop = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=base, headers={"X-Dashboard-Token": TOKEN},
                          timeout=30) as client:
            while not stop.is_set():
                try:
                    with client.stream("GET", "/live") as response:
                        for line in response.iter_lines():
                            if line.startswith("event: update"):
                                updates[0] += 1
                            if stop.is_set():
                                return
                except httpx.HTTPError as exc:
                    print(f"  (live page reconnects: {exc!r})", file=sys.stderr)
                    time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield updates
    finally:
        stop.set()
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


@dataclass(frozen=True, slots=True)
class Sample:
    """What the worker spent on one drain."""

    cpu: float
    syscalls: int
    io_bytes: int
    switches: int
    instructions: int = 0

    def __sub__(self, other: Sample) -> Sample:
        return Sample(self.cpu - other.cpu, self.syscalls - other.syscalls,
                      self.io_bytes - other.io_bytes, self.switches - other.switches,
                      self.instructions - other.instructions)


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


def sample(pid: int) -> Sample:
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    status = dict(line.split(":\t") for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    return Sample(cpu_seconds(pid), int(io["syscr"]) + int(io["syscw"]),
                  int(io["rchar"]) + int(io["wchar"]), int(status["voluntary_ctxt_switches"]))


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


def instructions(log: Path) -> int:
    """The instructions cachegrind counted (its "I refs" summary line)."""
    for line in log.read_text().splitlines():
        if "I   refs:" in line:
            return int(line.split(":")[1].replace(",", ""))
    raise RuntimeError(f"no instruction count in {log}")


async def drain_once(url: str, directory: Path, n: int, counted: bool = False) -> Sample:
    """Start a worker, wait until it is idle and registered, stop it, add ``n`` tasks, let
    it go and wait for the queue to empty: what the worker spent in between. ``counted``:
    run the worker under valgrind and add the instructions of its whole life."""
    sys.path.insert(0, str(directory))
    import benchapp  # type: ignore[import-not-found]

    command = ["queue", "start", "--app", "benchapp:app", "--url", url, "--concurrency", "32"]
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
                os.kill(worker.pid, signal.SIGCONT)
            while True:
                await anyio.sleep(POLL_SECONDS)
                counts = (await tasks.stats()).counts
                if counts[TaskStatus.PENDING] + counts[TaskStatus.RUNNING] == 0:
                    break
            spent = sample(worker.pid) - before
        if counted:
            spent = replace(spent, instructions=instructions(log))
        await tasks.purge()
    return spent


def drain_again(url: str, directory: Path, n: int, counted: bool) -> Sample:
    """:func:`drain_once`, run again (up to ``ATTEMPTS`` times) when the storage fails: a
    shared Redis is sometimes busy with another client's long script."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return anyio.run(drain_once, url, directory, n, counted)
        except (QueueError, RedisError) as exc:
            print(f"  (run failed, attempt {attempt} of {ATTEMPTS}: {exc!r})", file=sys.stderr)
            if attempt == ATTEMPTS:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def report(backend: str, n: int, runs: dict[str, list[Sample]], updates: int,
           measures: list[tuple[str, Callable[[Sample], float]]]) -> None:
    blocks = len(runs[PAGE])
    cpu = {kind: [s.cpu for s in samples] for kind, samples in runs.items()}
    no_page = statistics.median(cpu[NONE] + cpu[NONE_AGAIN])
    with_page = statistics.median(cpu[PAGE])
    spread = {kind: f"{min(values):.2f}-{max(values):.2f}" for kind, values in cpu.items()}
    under = " (worker UNDER VALGRIND)" if measures is INSTRUCTIONS else ""
    print(f"{backend}{under}: worker CPU draining {n:,} no-op tasks, {blocks} blocks of 3 runs "
          f"(no page, no page again, live page; order rotating)")
    print(f"  no page open:       {no_page:7.3f} s median of {2 * blocks} runs "
          f"(range {spread[NONE]} / {spread[NONE_AGAIN]})")
    print(f"  live page open:     {with_page:7.3f} s median of {blocks} runs "
          f"(range {spread[PAGE]}; {updates} live updates received)")
    print(f"  ratio live/none:    {with_page / no_page:7.3f}  (medians of each kind)")
    for index, (name, measure) in enumerate(measures):
        reference = [measure(s) for s in runs[NONE]]
        page = difference(reference, [measure(s) for s in runs[PAGE]])
        control = difference(reference, [measure(s) for s in runs[NONE_AGAIN]])
        print(f"  {name}:")
        if page is None or control is None:
            print("    (zero in every run: not counted for this backend)")
            continue
        print(f"    page/none - 1  (paired):   {page.line()}")
        print(f"    A/A none/none - 1 (noise): {control.line()}")
        if measures is MEASURES and index == 0:
            upper = page.median_ci[1]
            verdict = "ok" if upper < TARGET else ("OVER" if page.median_ci[0] >= TARGET
                                                   else "not resolved")
            print(f"    target < +{TARGET:.0%} extra worker CPU: upper bound of the median's "
                  f"CI {upper:+.2%}: {verdict}")


def measure(backend: str, url: str, directory: Path, n: int, blocks: int,
            counted: bool) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    anyio.run(drain_once, url, directory, 100)  # makes the queue (and warms the disk cache)
    dashboard = ["queue", "dashboard", "--url", url, "--port", str(port), "--token", TOKEN]
    runs: dict[str, list[Sample]] = {NONE: [], NONE_AGAIN: [], PAGE: []}
    updates = 0
    with process(dashboard, directory):
        wait_for_server(base)
        for order in block_orders(list(runs), blocks):
            for kind in order:
                if kind != PAGE:
                    runs[kind].append(drain_again(url, directory, n, counted))
                    continue
                with live_page(base) as seen:
                    runs[kind].append(drain_again(url, directory, n, counted))
                updates += seen[0]
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
                        help="blocks of three runs (no page, no page, page), >= 2")
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
