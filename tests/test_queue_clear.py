"""``qakeapi queue clear`` against a real SQLite file and a real Redis."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ._processes import env_for, write_task_app
from ._redis import redis_queue_url
from .test_queue_cli import cli, cli_json, enqueue_script

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "redis":
            yield stack.enter_context(redis_queue_url())
        else:
            yield f"sqlite:///{tmp_path}/queue.db"


def answering(cwd: Path, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qakeapi", "queue", "clear", *args],
                          cwd=cwd, input=answer, text=True, capture_output=True, timeout=60,
                          env=env_for(cwd))


def counts(cwd: Path, url: str) -> dict[str, int]:
    return cli_json(cwd, "queue", "status", "--url", url)["counts"]  # type: ignore[no-any-return]


def test_clear_deletes_pending_tasks_after_confirmation(tmp_path: Path, queue_url: str) -> None:
    write_task_app(tmp_path)
    enqueue_script(tmp_path, queue_url, "\n".join([
        "        a = tasks.add_task(taskapp.work, 1)",
        "        tasks.add_task(taskapp.work, 2, parent=a)",
        "        tasks.add_task(taskapp.work, 3, delay=3600)",
        "        kept = tasks.add_task(taskapp.work, 4)",
        "        await tasks.flush()",
        "        await tasks.cancel(kept.id)",
    ]))
    assert (counts(tmp_path, queue_url)["pending"], counts(tmp_path, queue_url)["cancelled"]) == (
        3, 1)

    for answer in ("n\n", ""):
        declined = answering(tmp_path, answer, "--url", queue_url)
        assert declined.returncode != 0 and "Aborted" in declined.stderr
        assert f"delete 3 pending task(s) from {queue_url}?" in declined.stderr
        assert counts(tmp_path, queue_url)["pending"] == 3

    assert cli_json(tmp_path, "queue", "clear", "--url", queue_url, "--yes") == {"deleted": 3}
    after = counts(tmp_path, queue_url)
    assert (after["pending"], after["cancelled"]) == (0, 1)
    [left] = cli_json(tmp_path, "queue", "list", "--url", queue_url)
    assert left["args"] == [4]

    enqueue_script(tmp_path, queue_url, "        tasks.add_task(taskapp.work, 5)")
    confirmed = answering(tmp_path, "y\n", "--url", queue_url)
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout.strip() == "deleted 1 pending task(s)"
    assert counts(tmp_path, queue_url)["pending"] == 0


def test_clear_refuses_what_it_cannot_see(tmp_path: Path) -> None:
    memory = cli(tmp_path, "queue", "clear", "--url", "memory://", "--yes", ok=False)
    assert memory.returncode != 0 and "lives inside the app" in memory.stderr
    missing = cli(tmp_path, "queue", "clear", "--url", f"sqlite:///{tmp_path}/nope.db", "--yes",
                  ok=False)
    assert missing.returncode != 0 and "there is no SQLite queue" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
