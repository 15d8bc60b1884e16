"""``qakeapi queue retry`` with dependencies, against a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._processes import write_task_app
from .test_queue_cli import cli, cli_json, enqueue_script

pytestmark = pytest.mark.slow


def test_retry_refuses_a_child_of_a_cancelled_parent_then_the_parent_revives_it(
        tmp_path: Path) -> None:
    write_task_app(tmp_path)
    url = f"sqlite:///{tmp_path}/queue.db"
    enqueue_script(tmp_path, url, "\n".join([
        "        a = tasks.add_task(taskapp.work, 1)",
        "        tasks.add_task(taskapp.work, 2, parent=a)",
    ]))
    listed = {r["args"][0]: r["id"] for r in cli_json(tmp_path, "queue", "list", "--url", url)}
    parent, child = listed[1], listed[2]
    cli(tmp_path, "queue", "cancel", parent, "--url", url)
    assert cli_json(tmp_path, "queue", "show", child, "--url", url)["status"] == "cancelled"

    refused = cli(tmp_path, "queue", "retry", child, "--url", url, ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"Error: task {child} can't be retried: its parent "
                                      f"{parent} is cancelled; retry the parent first")
    assert cli_json(tmp_path, "queue", "show", child, "--url", url)["status"] == "cancelled"

    assert cli_json(tmp_path, "queue", "retry", parent, "--url", url)["status"] == "pending"
    shown = cli_json(tmp_path, "queue", "show", child, "--url", url)
    assert (shown["status"], shown["cancel_reason"]) == ("pending", None)
