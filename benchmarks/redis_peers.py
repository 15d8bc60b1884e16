"""Redis queues: qakeapi against streaq, SAQ, taskiq (taskiq-redis) and arq, same run.

One private redis-server on a free port (no persistence), flushed between libraries. For each
library, N no-op tasks:

* enqueue — N calls with at most 32 in flight, and the library's batch call where it has one;
* drain — the queue filled first, then ONE worker process at concurrency 32;
* end-to-end — the worker running first, then the producer enqueues (32 in flight).

Each no-op task does one ``INCR`` on a counter so the driver sees when all are done — the same
for every library. qakeapi stores every task's record and result; the peers run with their
own defaults. Peers run from their own venvs under benchmarks/.venvs/ (created on first use:
arq needs redis-py < 6, taskiq-redis >= 8).

    python benchmarks/redis_peers.py            # N=20,000, all libraries
    python benchmarks/redis_peers.py --quick    # small N, qakeapi only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _servers import free_port

VENVS = Path(__file__).resolve().parent / ".venvs"

HEAD = '''
import asyncio, json, os, subprocess, sys, time
import redis.asyncio as aioredis

URL = os.environ["BENCH_REDIS_URL"]
COUNTER = "bench:done"
_client = None


def counter():
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(URL)
    return _client


async def bump():
    await counter().incr(COUNTER)


async def done_count():
    value = await counter().get(COUNTER)
    return int(value or 0)


async def wait_done(n, timeout=600):
    deadline = time.monotonic() + timeout
    while await done_count() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {await done_count()} of {n} done")
        await asyncio.sleep(0.005)


async def in_flight(n, call):
    sem = asyncio.Semaphore(32)

    async def one(i):
        async with sem:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(n)))


'''

MAIN = '''
def start_worker():
    return subprocess.Popen([sys.executable, __file__, "worker"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ)


def stop_worker(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


async def phase(name, n):
    await setup()
    try:
        if name == "enqueue":
            start = time.perf_counter()
            await in_flight(n, enqueue_one)
            return {"enqueue": time.perf_counter() - start}
        if name == "batch":
            if enqueue_batch is None:
                return {"batch": None}
            start = time.perf_counter()
            await enqueue_batch(n)
            return {"batch": time.perf_counter() - start}
        if name == "drain":
            await counter().delete(COUNTER)
            start = time.perf_counter()
            proc = start_worker()
            try:
                await wait_done(n)
                return {"drain": time.perf_counter() - start}
            finally:
                stop_worker(proc)
        if name == "e2e":
            await counter().delete(COUNTER)
            proc = start_worker()
            try:
                await enqueue_one(-1)
                await wait_done(1, timeout=60)
                start = time.perf_counter()
                await in_flight(n, enqueue_one)
                await wait_done(n + 1)
                return {"e2e": time.perf_counter() - start}
            finally:
                stop_worker(proc)
        if name == "latency":
            await counter().delete(COUNTER)
            proc = start_worker()
            samples = []
            try:
                await enqueue_one(-1)
                await wait_done(1, timeout=60)
                for i in range(n):
                    before = time.time()
                    await enqueue_one(i)
                    await wait_done(i + 2)
                    samples.append(await started_at(i) - before)
                    await asyncio.sleep(0.005)
            finally:
                stop_worker(proc)
            return {"latency": samples}
    finally:
        await teardown()


if __name__ == "__main__":
    import driver  # task functions must live in an importable module, not __main__

    if sys.argv[1] == "worker":
        driver.run_worker()
    else:
        print(json.dumps(asyncio.run(driver.phase(sys.argv[1], int(sys.argv[2])))))
'''

QAKEAPI = '''
import time
import anyio
from qakeapi import QakeAPI
from qakeapi.queued_tasks import QueuedTasks

app = QakeAPI()
_tasks = None


async def noop(i):
    await bump()


async def stamped(i):
    await counter().set(f"bench:start:{i}", repr(time.time()))
    await bump()


async def setup():
    global _tasks
    _tasks = QueuedTasks(URL, embedded_worker=False)
    await _tasks.__aenter__()


async def teardown():
    await _tasks.__aexit__(None, None, None)


async def enqueue_one(i):
    await _tasks.enqueue(stamped if LATENCY else noop, i)


async def _batch(n):
    for i in range(n):
        _tasks.add_task(noop, i)
    await _tasks.flush()


enqueue_batch = _batch


async def started_at(i):
    return float(await counter().get(f"bench:start:{i}"))


def run_worker():
    os.execv(sys.executable, [sys.executable, "-m", "qakeapi", "queue", "start", "--app",
                              "driver:app", "--url", URL, "--concurrency", "32"])


LATENCY = os.environ.get("BENCH_LATENCY") == "1"
'''

ARQ = '''
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import run_worker as arq_run_worker

SETTINGS = RedisSettings.from_dsn(URL)
_pool = None


async def noop(ctx, i):
    await bump()


class WorkerSettings:
    functions = [noop]
    redis_settings = SETTINGS
    max_jobs = 32


async def setup():
    global _pool
    _pool = await create_pool(SETTINGS)


async def teardown():
    await _pool.aclose()


async def enqueue_one(i):
    await _pool.enqueue_job("noop", i)


enqueue_batch = None


def run_worker():
    arq_run_worker(WorkerSettings)
'''

SAQ = '''
from saq import Queue
from saq.worker import Worker

_queue = None


async def noop(ctx, *, i):
    await bump()


async def setup():
    global _queue
    _queue = Queue.from_url(URL)
    await _queue.connect()


async def teardown():
    await _queue.disconnect()


async def enqueue_one(i):
    await _queue.enqueue("noop", i=i)


enqueue_batch = None


def run_worker():
    async def main():
        queue = Queue.from_url(URL)
        await Worker(queue, functions=[noop], concurrency=32).start()

    asyncio.run(main())
'''

TASKIQ = '''
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

broker = ListQueueBroker(url=URL)


@broker.task
async def noop(i):
    await bump()


async def setup():
    await broker.startup()


async def teardown():
    await broker.shutdown()


async def enqueue_one(i):
    await noop.kiq(i)


enqueue_batch = None


def run_worker():
    os.execv(sys.executable, [sys.executable, "-m", "taskiq", "worker", "driver:broker",
                              "--workers", "1", "--max-async-tasks", "32",
                              "--no-configure-logging"])
'''

STREAQ = '''
from streaq import Worker

worker = Worker(redis_url=URL, concurrency=32)


@worker.task()
async def noop(i: int) -> None:
    await bump()


async def setup():
    await worker.__aenter__()


async def teardown():
    await worker.__aexit__(None, None, None)


async def enqueue_one(i):
    await noop.enqueue(i)


async def _batch(n):
    await worker.enqueue_many([noop.enqueue(i) for i in range(n)])


enqueue_batch = _batch


def run_worker():
    worker.run_sync()
'''

PEERS = {
    "streaq": (["streaq", "redis"], STREAQ),
    "saq": (["saq", "redis", "typing_extensions"], SAQ),
    "taskiq": (["taskiq", "taskiq-redis", "redis>=5"], TASKIQ),
    "arq": (["arq", "redis<6"], ARQ),
}


def peer_python(name: str, packages: list[str]) -> str:
    venv = VENVS / name
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)


def run_phase(python: str, directory: Path, phase: str, n: int, url: str,
              extra_env: dict[str, str] | None = None) -> dict[str, object]:
    env = dict(os.environ, BENCH_REDIS_URL=url, PYTHONPATH=str(directory), **(extra_env or {}))
    out = subprocess.run([python, str(directory / "driver.py"), phase, str(n)], cwd=directory,
                         env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def flush(port: int) -> None:
    subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], check=True,
                   stdout=subprocess.DEVNULL)


def measure(name: str, python: str, code: str, n: int, port: int) -> dict[str, object]:
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "driver.py").write_text(HEAD + textwrap.dedent(code) + MAIN)
        result: dict[str, object] = {}
        flush(port)
        result.update(run_phase(python, directory, "batch", n, url))
        flush(port)
        result.update(run_phase(python, directory, "enqueue", n, url))
        result.update(run_phase(python, directory, "drain", n, url))
        flush(port)
        result.update(run_phase(python, directory, "e2e", n, url))
        if name == "qakeapi":
            flush(port)
            samples = 50 if n < 5000 else 200
            result.update(run_phase(python, directory, "latency", samples, url,
                                    {"BENCH_LATENCY": "1"}))
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    n = 500 if args.quick else args.n
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed on PATH")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    results: dict[str, dict[str, object] | str] = {}
    try:
        results["qakeapi"] = measure("qakeapi", sys.executable, QAKEAPI, n, port)
        if not args.quick:
            for name, (packages, code) in PEERS.items():
                try:
                    results[name] = measure(name, peer_python(name, packages), code, n, port)
                except Exception as exc:
                    results[name] = f"error: {exc}"
    finally:
        server.terminate()
        server.wait(10)
    print(f"Redis queues, N={n:,} no-op tasks (tasks/s; one worker process, concurrency 32)")
    print(f"{'library':<10}{'enqueue(32)':>13}{'batch':>10}{'drain':>10}{'end-to-end':>12}")
    best_peer: dict[str, float] = {}
    for name, row in results.items():
        if isinstance(row, str):
            print(f"{name:<10}  {row}")
            continue
        rates = {k: (n / float(v) if isinstance(v, (int, float)) and v else 0.0)
                 for k, v in row.items() if k != "latency"}
        if name != "qakeapi":
            for key, rate in rates.items():
                best_peer[key] = max(best_peer.get(key, 0.0), rate)
        batch = f"{rates['batch']:,.0f}" if rates.get("batch") else "-"
        print(f"{name:<10}{rates['enqueue']:>13,.0f}{batch:>10}"
              f"{rates['drain']:>10,.0f}{rates['e2e']:>12,.0f}")
    ours = results["qakeapi"]
    assert isinstance(ours, dict)
    if best_peer:
        for key in ("enqueue", "drain", "e2e"):
            mine = n / float(ours[key])  # type: ignore[arg-type]
            print(f"qakeapi / fastest peer, {key}: {mine / best_peer[key]:.2f}")
    print(f"qakeapi: {n:,} enqueues in {float(ours['enqueue']):.2f} s (32 in flight), "  # type: ignore[arg-type]
          f"{float(ours['batch']):.2f} s batched")  # type: ignore[arg-type]
    latency = sorted(float(x) for x in ours["latency"])  # type: ignore[attr-defined]
    p99 = latency[min(len(latency) - 1, int(len(latency) * 0.99))]
    print(f"qakeapi idle latency add_task -> start: median {statistics.median(latency) * 1000:.1f}"
          f" ms, p99 {p99 * 1000:.1f} ms (target p99 < 5 ms)")


if __name__ == "__main__":
    main()
