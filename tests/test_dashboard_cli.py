"""``qakeapi queue dashboard``: a real process serving a SQLite queue's dashboard on
127.0.0.1, refusing requests without its token; bad options fail clearly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ._processes import env_for, stop
from ._server import free_port
from .test_queue_cli import cli, enqueue_script

pytestmark = pytest.mark.slow
TOKEN = "cli-dashboard-token"


def test_standalone_dashboard(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    (tmp_path / "taskapp.py").write_text("async def work(n):\n    return n\n")
    enqueue_script(tmp_path, url, "        ref = tasks.add_task(taskapp.work, 7)\n"
                   "        print(ref.id, file=open('id.txt', 'w'))")
    task_id = (tmp_path / "id.txt").read_text().strip()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "dashboard", "--url", url, "--port",
         str(port), "--read-only"], cwd=tmp_path,
        env=env_for(tmp_path, QAKEAPI_DASHBOARD_TOKEN=TOKEN), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                refused = httpx.get(f"{base}/")
                break
            except httpx.ConnectError:
                assert server.poll() is None, "the dashboard exited"
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert refused.status_code == 401
        page = httpx.get(f"{base}/tasks", headers={"X-Dashboard-Token": TOKEN})
        assert page.status_code == 200 and task_id[:12] in page.text
        task = httpx.get(f"{base}/task/{task_id}", headers={"X-Dashboard-Token": TOKEN})
        assert "work" in task.text and "pending" in task.text and "Cancel" not in task.text
    finally:
        stop(server)
    assert server.stderr is not None
    assert "127.0.0.1" in server.stderr.read().decode()


def test_standalone_dashboard_errors(tmp_path: Path) -> None:
    memory = cli(tmp_path, "queue", "dashboard", "--url", "memory://", ok=False)
    assert memory.returncode != 0 and "mount dashboard" in memory.stderr
    missing = cli(tmp_path, "queue", "dashboard", "--url", f"sqlite:///{tmp_path}/none.db",
                  ok=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    (tmp_path / "taskapp.py").write_text("")
    enqueue_script(tmp_path, f"sqlite:///{tmp_path / 'q.db'}", "        pass")
    short = cli(tmp_path, "queue", "dashboard", "--url", f"sqlite:///{tmp_path / 'q.db'}",
                "--token", "short", ok=False)
    assert short.returncode != 0 and "at least 8" in short.stderr
