"""README.md: its Python examples run, and its example app works as the README says."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from qakeapi.testing import TestClient

from ._docs import ROOT, python_blocks
from ._processes import stop, wait_until, wait_until_serving
from ._server import free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_setup_commands_are_the_ones_ci_runs() -> None:
    blocks = README.split("```bash\n")
    run_line = blocks[1].split("```")[0].strip()
    test_line = blocks[2].split("```")[0].strip()
    assert run_line.endswith("qakeapi run examples.shop:app --port 8000")
    assert test_line.endswith(".venv/bin/python -m pytest -q")
    assert ".venv/bin/python -m pytest -q" in (ROOT / ".ci/run").read_text()


def test_background_example() -> None:
    [block] = [b for b in python_blocks("README.md") if "def send_email" in b]
    ns: dict[str, Any] = {"__name__": "readme_background"}
    exec(block, ns)
    with TestClient(ns["app"]) as client:
        assert client.post("/users", json={"email": "ada@example.com"}).json() == {
            "message": "User created"}
        wait_until(lambda: ns["sent"] == ["Welcome -> ada@example.com"], 5, "the email")


def test_queued_example() -> None:
    [block] = [b for b in python_blocks("README.md") if "def process_order" in b]
    ns: dict[str, Any] = {"__name__": "readme_queued"}
    exec(block, ns)
    app = ns["app"]
    with TestClient(app) as client:
        assert client.post("/orders", json={"id": 5}).json() == {"order_queued": True}

        def both_done() -> bool:
            records = client.portal.call(app.queued_tasks.list)
            return len(records) == 2 and all(r.is_terminal for r in records)

        wait_until(both_done, 10, "both tasks")
        records = client.portal.call(app.queued_tasks.list)
    results = sorted(json.dumps(r.result, sort_keys=True) for r in records)
    assert results == ['{"confirmation_sent": true}', '{"order_id": 5, "status": "processed"}']


@pytest.mark.slow
def test_example_app_as_the_readme_shows(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("QUEUE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "run", "examples.shop:app", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, server, 20, request_timeout=2)
        shell = README.split("While the app runs, in another shell:", 1)[1]
        lines = [line for line in shell.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
                 if line and not line.startswith("#")]
        task_id = ""
        for line in lines:
            argv = shlex.split(line.replace("localhost:8000", f"127.0.0.1:{port}")
                               .replace("<task_id>", task_id))
            if argv[0] == "curl":
                result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                assert result.returncode == 0, result.stderr
                body = json.loads(result.stdout)
                if "task_id" in body and not task_id:
                    task_id = body["task_id"]
                    assert body["queued"] is True
                elif "/tasks/" in line:
                    assert body["id"] == task_id and body["status"] in (
                        "pending", "running", "succeeded")
                else:
                    assert body == {"message": "User created"}
            else:
                assert argv[0] == ".venv/bin/qakeapi"
                result = subprocess.run([sys.executable, "-m", "qakeapi", *argv[1:]],
                                        cwd=tmp_path, env=env, capture_output=True, text=True,
                                        timeout=30)
                assert result.returncode == 0, result.stderr
        assert task_id
        url = "sqlite:///shop-queue.db"

        def report_done() -> bool:
            result = subprocess.run(
                [sys.executable, "-m", "qakeapi", "queue", "show", task_id, "--url", url,
                 "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
            data = json.loads(result.stdout)
            return bool(data["status"] == "succeeded" and data["context"]["progress"] == 100)

        wait_until(report_done, 30, "the report task")
        status = httpx.get(f"{base}/tasks/{task_id}", timeout=5).json()
        assert status == {"id": task_id, "status": "succeeded", "progress": 100,
                          "result": {"report_id": 42, "pages": 5}}
    finally:
        stop(server, signal.SIGTERM)
