"""What an open live dashboard page costs the workers: a real worker process drains N no-op
tasks (20,000 by default) on SQLite and on Redis, with no page open and with one live page
open — a server-sent-events connection to the dashboard served by ``qakeapi queue dashboard``
in another process, reconnecting as a browser does. Runs alternate (no page, page, page,
no page, ...: neither kind always goes first);
the figure is the WORKER process's CPU seconds from its first claim to the empty queue (read
from ``/proc/<pid>/stat``, so its start-up is not counted), median of the runs of each kind,
and their ratio against the target of < 1% extra.

    python benchmarks/dashboard_live_cpu.py [--quick] [--tasks N] [--runs N]
                                            [--only sqlite|redis]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qakeapi.queued_tasks import QueuedTasks
from qakeapi.types import TaskStatus

REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TOKEN = "benchmark-live-cpu-token"
TARGET = 0.01
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
def process(command: list[str], directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-m", "qakeapi", *command], cwd=directory,
                             env=env(directory), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield child
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(30)


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


async def drain_once(url: str, directory: Path, n: int) -> float:
    """Start a worker, wait until it is idle and registered, enqueue ``n`` tasks, wait for
    the queue to empty: the worker's CPU seconds in between."""
    sys.path.insert(0, str(directory))
    import benchapp  # type: ignore[import-not-found]

    command = ["queue", "start", "--app", "benchapp:app", "--url", url, "--concurrency", "32"]
    async with QueuedTasks(url, embedded_worker=False) as tasks:
        with process(command, directory) as worker:
            deadline = time.monotonic() + 30
            while not any(w.pid == worker.pid for w in await tasks.workers()):
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker never registered")
                await anyio.sleep(0.05)
            await anyio.sleep(0.5)  # start-up done: from here on its CPU is the drain's
            before = cpu_seconds(worker.pid)
            for i in range(n):
                tasks.add_task(benchapp.noop, i)
            await tasks.flush()
            while True:
                counts = (await tasks.stats()).counts
                if counts[TaskStatus.PENDING] + counts[TaskStatus.RUNNING] == 0:
                    break
                await anyio.sleep(0.02)
            spent = cpu_seconds(worker.pid) - before
        await tasks.purge()
    return spent


def measure(backend: str, url: str, directory: Path, n: int, runs: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    anyio.run(drain_once, url, directory, 100)  # makes the queue (and warms the disk cache)
    dashboard = ["queue", "dashboard", "--url", url, "--port", str(port), "--token", TOKEN]
    idle: list[float] = []
    watched: list[float] = []
    updates = 0
    with process(dashboard, directory):
        wait_for_server(base)
        for run in range(runs):
            for open_page in ((False, True) if run % 2 == 0 else (True, False)):  # ABBA
                if not open_page:
                    idle.append(anyio.run(drain_once, url, directory, n))
                    continue
                with live_page(base) as seen:
                    watched.append(anyio.run(drain_once, url, directory, n))
                updates += seen[0]
    no_page, with_page = statistics.median(idle), statistics.median(watched)
    extra = with_page / no_page - 1
    print(f"{backend}: worker CPU draining {n:,} no-op tasks, median of {runs} alternating "
          f"runs each")
    print(f"  no page open:       {no_page:7.2f} s  (runs: "
          f"{', '.join(f'{x:.2f}' for x in idle)})")
    print(f"  live page open:     {with_page:7.2f} s  (runs: "
          f"{', '.join(f'{x:.2f}' for x in watched)}; {updates} live updates received)")
    print(f"  ratio live/none:    {with_page / no_page:7.3f}  ({extra:+.1%} worker CPU; "
          f"target < +{TARGET:.0%}: {'ok' if extra < TARGET else 'OVER'})")


def delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
    for start in range(0, len(keys), 1_000):
        client.unlink(*keys[start:start + 1_000])
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 tasks, one run each")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (>= 3)")
    parser.add_argument("--only", choices=("sqlite", "redis"))
    options = parser.parse_args()
    n, runs = (1_000, 1) if options.quick else (options.tasks, max(3, options.runs))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "benchapp.py").write_text(textwrap.dedent(APP))
        if options.only != "redis":
            measure("sqlite", f"sqlite:///{directory / 'queue.db'}", directory, n, runs)
        if options.only != "sqlite":
            prefix = f"qakeapi-bench-{uuid.uuid4().hex[:8]}"
            separator = "&" if "?" in REDIS_URL else "?"
            try:
                measure("redis", f"{REDIS_URL}{separator}prefix={prefix}", directory, n, runs)
            finally:
                delete_prefix(prefix)


if __name__ == "__main__":
    main()
