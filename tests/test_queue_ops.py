"""Operations: a damaged or missing SQLite queue gets one clear line from the CLI, and
``queue start --workers N`` keeps N real worker processes running."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks import _supervisor as supervisor
from qakeapi.queued_tasks._supervisor import Supervisor, WorkersKeepFailing

from . import _queue_tasks as t
from ._processes import env_for, read_runs, start_worker, stop, wait_until, write_task_app
from .test_queue_cli import enqueue_script

pytestmark = pytest.mark.slow

INSPECT = (["status"], ["list"], ["show", "x"], ["logs", "x"], ["retry", "x"], ["cancel", "x"],
           ["purge"])


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qakeapi", "queue", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, env=env_for(cwd))


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT name FROM sqlite_master ORDER BY name")]


def test_looking_at_a_missing_or_foreign_file_creates_no_queue(tmp_path: Path) -> None:
    for command in INSPECT:
        error = one_line_error(cli(tmp_path, *command, "--url", "sqlite:///nope.db"))
        assert "there is no SQLite queue at sqlite:///nope.db" in error
    assert list(tmp_path.iterdir()) == []
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE users (id INTEGER)")
    for command in INSPECT:
        error = one_line_error(cli(tmp_path, *command, "--url", "sqlite:///app.db"))
        assert "app.db is not a SQLite queue" in error
    assert tables(tmp_path / "app.db") == ["users"]


def test_damaged_pages_give_one_line(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"

    async def fill() -> None:
        async with QueuedTasks(f"sqlite:///{db}", embedded_worker=False) as tasks:
            for _ in range(2000):
                tasks.add_task(t.echo, "x" * 200)
            await tasks.flush()

    anyio.run(fill)
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size // 2)
        f.write(b"\xa5" * 16384)
    error = one_line_error(cli(tmp_path, "status", "--url", f"sqlite:///{db}"))
    assert "is damaged (database disk image is malformed)" in error
    for command in INSPECT[1:]:
        result = cli(tmp_path, *command, "--url", f"sqlite:///{db}")
        assert "Traceback" not in result.stderr
        if result.returncode != 0:
            one_line_error(result)


def child_pids(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found.add(int(entry))
    return found


def live_worker_pids(cwd: Path, url: str) -> set[int]:
    result = cli(cwd, "status", "--url", url, "--json")
    return {w["pid"] for w in json.loads(result.stdout)["workers"]} if result.stdout else set()


def test_supervisor_restarts_a_killed_worker(tmp_path: Path) -> None:
    runs = write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    supervisor_process = start_worker(tmp_path, url, workers=2)
    try:
        wait_until(lambda: len(child_pids(supervisor_process.pid)) == 2, 30, "2 workers")
        first = child_pids(supervisor_process.pid)
        wait_until(lambda: live_worker_pids(tmp_path, url) >= first, 30, "both registered")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(child_pids(supervisor_process.pid) - first) == 1, 60,
                   "a new worker process")
        (replacement,) = child_pids(supervisor_process.pid) - first
        wait_until(lambda: replacement in live_worker_pids(tmp_path, url), 30,
                   "the new worker registered")
        os.kill(max(first), signal.SIGKILL)
        wait_until(lambda: len(child_pids(supervisor_process.pid) - first) == 2, 60,
                   "the second worker replaced too")
        enqueue_script(tmp_path, url, "        for i in range(20):\n"
                                      "            tasks.add_task(taskapp.work, i)")
        wait_until(lambda: sorted(read_runs(runs)) == list(range(20)), 60, "20 runs")
        assert supervisor_process.poll() is None
    finally:
        stop(supervisor_process)
    stderr = supervisor_process.stderr.read().decode() if supervisor_process.stderr else ""
    assert f"worker process {victim} was killed by SIGKILL" in stderr
    assert supervisor_process.returncode == 0
    assert child_pids(supervisor_process.pid) == set()


def test_supervisor_gives_up_on_workers_that_keep_dying(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(supervisor, "SUPERVISOR_BACKOFF_BASE", 0.01)
    monkeypatch.setattr(supervisor, "SUPERVISOR_CHECK_SECONDS", 0.01)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with caplog.at_level(logging.WARNING, logger="qakeapi.supervisor"), \
                pytest.raises(WorkersKeepFailing, match="exited with code 3"):
            Supervisor([sys.executable, "-c", "raise SystemExit(3)"], 2).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert sum("exited with code 3" in r.getMessage() for r in caplog.records) >= 5
    assert any("started in place of" in r.getMessage() for r in caplog.records)


def test_sigterm_to_the_whole_group_drains_instead_of_forcing(tmp_path: Path) -> None:
    """A service manager signals every process of the group and the supervisor passes it on:
    each worker gets SIGTERM twice at once, and must still let its running task finish."""
    runs = write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    supervisor_process = start_worker(tmp_path, url, workers=2)
    try:
        enqueue_script(tmp_path, url, "        tasks.add_task(taskapp.work, 1, 3.0)")
        wait_until(lambda: '"running"' in cli(tmp_path, "list", "--url", url, "--json").stdout,
                   30, "the task to run")
        os.killpg(supervisor_process.pid, signal.SIGTERM)
        supervisor_process.wait(60)
    finally:
        stop(supervisor_process)
    assert read_runs(runs) == [1]
    statuses = [r["status"] for r in json.loads(cli(tmp_path, "list", "--url", url,
                                                    "--json").stdout)]
    assert statuses == ["succeeded"]
