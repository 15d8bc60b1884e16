"""The queue CLI against a real SQLite file and a real worker process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._processes import env_for, start_worker, stop, wait_until, write_task_app

pytestmark = pytest.mark.slow


def cli(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "qakeapi", *args], cwd=cwd, text=True,
                            capture_output=True, timeout=60, env=env_for(cwd))
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def cli_json(cwd: Path, *args: str) -> Any:
    return json.loads(cli(cwd, *args, "--json").stdout)


def enqueue_script(directory: Path, url: str, body: str) -> None:
    script = directory / "enqueue.py"
    script.write_text(
        "import anyio, json, sys\n"
        "from qakeapi.queued_tasks import QueuedTasks\n"
        "import taskapp\n"
        "async def main():\n"
        f"    async with QueuedTasks({url!r}, embedded_worker=False) as tasks:\n"
        f"{body}\n"
        "        await tasks.flush()\n"
        "anyio.run(main)\n")
    subprocess.run([sys.executable, str(script)], cwd=directory, env=env_for(directory),
                   check=True, timeout=60)


def test_inspect_and_control_tasks(tmp_path: Path) -> None:
    write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    enqueue_script(tmp_path, url, "\n".join([
        "        a = tasks.add_task(taskapp.work, 1)",
        "        tasks.add_task(taskapp.work, 2, parent=a)",
        "        tasks.add_task(taskapp.work, 3, delay=3600)",
        "        print(a.id)",
    ]))
    status = cli_json(tmp_path, "queue", "status", "--url", url)
    assert status["counts"]["pending"] == 3 and status["workers"] == []
    assert status["oldest_pending_at"] is not None
    table = cli(tmp_path, "queue", "status", "--url", url).stdout
    assert "pending    3" in table and "live workers: 0" in table

    listed = cli_json(tmp_path, "queue", "list", "--url", url)
    assert sorted(r["args"][0] for r in listed) == [1, 2, 3]
    delayed = next(r for r in listed if r["args"][0] == 3)
    cancelled = cli_json(tmp_path, "queue", "cancel", delayed["id"], "--url", url)
    assert cancelled["status"] == "cancelled"
    retried = cli_json(tmp_path, "queue", "retry", delayed["id"], "--url", url)
    assert retried["status"] == "pending"

    worker = start_worker(tmp_path, url, concurrency=4)
    try:
        # the retried delayed task is due at once, so all three run
        wait_until(lambda: cli_json(tmp_path, "queue", "status", "--url", url)["counts"][
            "succeeded"] == 3, 30, "three tasks done")
        live = cli_json(tmp_path, "queue", "status", "--url", url)["workers"]
        assert len(live) == 1 and live[0]["concurrency"] == 4
    finally:
        stop(worker, signal.SIGTERM)
    assert cli_json(tmp_path, "queue", "status", "--url", url)["workers"] == []

    done = [r for r in cli_json(tmp_path, "queue", "list", "--url", url, "--status",
                                "succeeded")]
    shown = cli_json(tmp_path, "queue", "show", done[0]["id"], "--url", url)
    assert shown["result"] == shown["args"][0]
    human = cli(tmp_path, "queue", "show", done[0]["id"], "--url", url).stdout
    assert "status:" in human and "succeeded" in human
    assert cli_json(tmp_path, "queue", "logs", done[0]["id"], "--url", url) == []

    purged = cli_json(tmp_path, "queue", "purge", "--url", url, "--status", "succeeded")
    assert purged == {"purged": 3}


def test_show_failed_task_with_traceback_and_logs(tmp_path: Path) -> None:
    (tmp_path / "failapp.py").write_text(
        "from qakeapi import QakeAPI\n"
        "from qakeapi.queued_tasks import getLogger, set_context\n"
        "app = QakeAPI()\n"
        "async def explode(n):\n"
        "    set_context('progress', 10)\n"
        "    getLogger('failapp').warning('about to explode %s', n)\n"
        "    raise ValueError(f'exploded {n}')\n")
    write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    enqueue_script(tmp_path, url,
                   "        import failapp\n        tasks.add_task(failapp.explode, 7, "
                   "max_retries=0)")
    worker = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "queue", "start", "--app", "failapp:app", "--url",
         url], cwd=tmp_path, env=env_for(tmp_path), stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        wait_until(lambda: cli_json(tmp_path, "queue", "status", "--url", url)["counts"][
            "failed"] == 1, 30, "the task to fail")
    finally:
        stop(worker)
    [failed] = cli_json(tmp_path, "queue", "list", "--url", url, "--status", "failed")
    human = cli(tmp_path, "queue", "show", failed["id"], "--url", url).stdout
    assert "ValueError: exploded 7" in human and "Traceback" in human
    assert '"progress": 10' in human
    logs = cli(tmp_path, "queue", "logs", failed["id"], "--url", url).stdout
    assert "about to explode 7" in logs


def test_clear_errors(tmp_path: Path) -> None:
    memory = cli(tmp_path, "queue", "status", "--url", "memory://", ok=False)
    assert memory.returncode != 0 and "lives inside the app" in memory.stderr
    url = f"sqlite:///{tmp_path}/queue.db"
    no_queue = cli(tmp_path, "queue", "show", "nope", "--url", url, ok=False)
    assert no_queue.returncode != 0 and "there is no SQLite queue" in no_queue.stderr
    write_task_app(tmp_path)
    enqueue_script(tmp_path, url, "        pass")
    missing = cli(tmp_path, "queue", "show", "nope", "--url", url, ok=False)
    assert missing.returncode != 0 and "no task with id 'nope'" in missing.stderr
    bad_app = cli(tmp_path, "queue", "start", "--app", "nosuchmodule:app", ok=False)
    assert bad_app.returncode != 0 and "could not import module" in bad_app.stderr
    scheme = cli(tmp_path, "queue", "status", "--url", "postgres://x/y", ok=False)
    assert scheme.returncode != 0 and "unknown QUEUE_URL scheme" in scheme.stderr
    run_bad = cli(tmp_path, "run", "nosuchmodule:app", ok=False)
    assert run_bad.returncode != 0 and "could not import module" in run_bad.stderr
