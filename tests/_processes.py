"""Real worker and server processes for the process tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx

TASK_APP = '''
import os
import anyio
from qakeapi import Inject, QakeAPI
from qakeapi.queued_tasks import QueuedTasks

app = QakeAPI()
RUNS = os.environ.get("TASKAPP_RUNS", "runs.txt")


def _record(i):
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{i}\\n".encode())
    finally:
        os.close(fd)


async def work(i, seconds=0.0):
    if seconds:
        await anyio.sleep(seconds)
    _record(i)
    return i


@app.post("/queue/{n}")
async def queue_one(n: int, tasks: QueuedTasks = Inject(QueuedTasks)):
    ref = tasks.add_task(work, n)
    return {"queued": True, "id": ref.id}
'''


def write_task_app(directory: Path) -> Path:
    (directory / "taskapp.py").write_text(textwrap.dedent(TASK_APP))
    return directory / "runs.txt"


def env_for(directory: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TASKAPP_RUNS"] = str(directory / "runs.txt")
    env["PYTHONPATH"] = os.pathsep.join([str(directory), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def start_worker(directory: Path, url: str, *, concurrency: int = 32, workers: int = 1,
                 **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "start", "--app", "taskapp:app",
         "--url", url, "--concurrency", str(concurrency), "--workers", str(workers)],
        cwd=directory, env=env_for(directory, **env), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def read_runs(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float,
                       request_timeout: float = 5) -> None:
    """Poll ``url`` until the server ``process`` runs answers; fails with the server's stderr
    (when it is piped) if the process has ended, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=request_timeout)
            return
        except httpx.TransportError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, f"the server at {url} did not start"
            time.sleep(0.1)
