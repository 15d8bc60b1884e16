"""``qakeapi queue status --watch``: the real CLI process refreshing against a real SQLite queue
while a real worker drains it, stopped by Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from ._docs import ROOT
from ._processes import env_for, start_worker, stop, write_task_app
from .test_queue_cli import cli, enqueue_script

pytestmark = pytest.mark.slow


def _watch(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "status", "--url", url, "--watch",
         "--interval", "0.2", *extra],
        cwd=tmp_path, env=env_for(tmp_path), text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)


def _frames(stream: IO[str], count: int) -> list[dict[str, Any]]:
    return [json.loads(stream.readline()) for _ in range(count)]


def _interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "Aborted" not in err
    return out, err


def test_watch_follows_the_queue_until_ctrl_c(tmp_path: Path) -> None:
    write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    enqueue_script(tmp_path, url, "        for i in range(5):\n"
                                  "            tasks.add_task(taskapp.work, i)")
    watch = _watch(tmp_path, url, "--json")
    worker = None
    try:
        assert watch.stdout is not None
        first, second = _frames(watch.stdout, 2)
        assert first["counts"]["pending"] == 5 and first["workers"] == []
        assert first["oldest_pending_at"] is not None
        assert second["time"] - first["time"] >= 0.15
        worker = start_worker(tmp_path, url, concurrency=2)
        deadline = time.monotonic() + 60
        while True:
            (frame,) = _frames(watch.stdout, 1)
            if frame["counts"]["succeeded"] == 5 and len(frame["workers"]) == 1:
                break
            assert time.monotonic() < deadline, frame
        assert frame["counts"]["pending"] == 0
        assert frame["oldest_pending_at"] is None
        assert frame["workers"][0]["concurrency"] == 2
    finally:
        if worker is not None:
            stop(worker)
        _interrupt(watch)


def test_watch_tables_show_changes(tmp_path: Path) -> None:
    write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    enqueue_script(tmp_path, url, "        tasks.add_task(taskapp.work, 1, delay=3600)")
    watch = _watch(tmp_path, url)
    time.sleep(1.5)
    out, _ = _interrupt(watch)
    frames = [frame for frame in out.split("\n\n") if frame.strip()]
    assert len(frames) >= 3, out
    assert "Ctrl-C to stop" in frames[0] and "  change" not in frames[0]
    assert "pending    1      +0" in frames[-1]
    assert "\x1b[" not in out  # not a terminal: frames are not cleared


def test_watch_refuses_bad_input(tmp_path: Path) -> None:
    refused = cli(tmp_path, "queue", "status", "--url", "sqlite:///q.db", "--watch",
                  "--interval", "0", ok=False)
    assert refused.returncode == 2 and "--interval" in refused.stderr
    missing = cli(tmp_path, "queue", "status", "--url", "sqlite:///missing.db", "--watch",
                  ok=False)
    assert missing.returncode == 1 and "there is no SQLite queue" in missing.stderr
    assert not os.path.exists(tmp_path / "missing.db")


def test_documented_watch_commands(tmp_path: Path) -> None:
    text = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    block = text.split("## Live status", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("|", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    write_task_app(tmp_path)
    (tmp_path / "myapp.py").write_text(
        "import os\nos.environ.setdefault('QUEUE_URL', 'sqlite:///queue.db')\n"
        "from taskapp import app, work\n")
    enqueue_script(tmp_path, "sqlite:///queue.db",
                   "        tasks.add_task(taskapp.work, 1, delay=3600)")
    for command in commands:
        argv = shlex.split(command)
        assert argv[:3] == ["qakeapi", "queue", "status"]
        process = subprocess.Popen([sys.executable, "-m", "qakeapi", *argv[1:]], cwd=tmp_path,
                                   env=env_for(tmp_path), text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdout is not None
        first = process.stdout.readline()
        if "--json" in argv:
            assert json.loads(first)["counts"]["pending"] == 1
        else:
            assert "Ctrl-C to stop" in first
        _interrupt(process)
