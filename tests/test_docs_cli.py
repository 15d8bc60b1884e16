"""Every command line in docs/cli.md runs (myapp:app is a small task app here)."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._docs import ROOT
from ._processes import env_for, stop, wait_until_serving, write_task_app
from ._server import free_port
from .test_queue_cli import cli_json, enqueue_script

pytestmark = pytest.mark.slow


def doc_commands() -> list[str]:
    text = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_every_documented_command(tmp_path: Path) -> None:
    write_task_app(tmp_path)
    (tmp_path / "myapp.py").write_text(
        "import os\nos.environ.setdefault('QUEUE_URL', 'sqlite:///queue.db')\n"
        "from taskapp import app, work\n")
    url = "sqlite:///queue.db"
    enqueue_script(tmp_path, url, "        tasks.add_task(taskapp.work, 5, delay=3600)")
    task_id = cli_json(tmp_path, "queue", "list", "--url", url)[0]["id"]
    env = env_for(tmp_path, QUEUE_EMBEDDED_WORKER="0")
    for command in doc_commands():
        argv = shlex.split(command.replace("TASK_ID", task_id).replace("8000",
                                                                     str(free_port())))
        assert argv[0] == "qakeapi"
        full = [sys.executable, "-m", "qakeapi", *argv[1:]]
        serves = argv[1] == "run" or argv[1:3] == ["queue", "dashboard"]
        if serves or argv[1:3] == ["queue", "start"]:
            process = subprocess.Popen(full, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, start_new_session=True)
            try:
                if serves:
                    port = argv[argv.index("--port") + 1]
                    wait_until_serving(f"http://127.0.0.1:{port}/", process, 20,
                                       request_timeout=2)
                else:
                    time.sleep(2)
                    assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
            finally:
                stop(process, signal.SIGTERM)
            assert process.returncode in (0, -signal.SIGTERM), command
            continue
        result = subprocess.run(full, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"{command}: {result.stderr}"
