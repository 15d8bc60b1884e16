"""docs/background-to-queued.md: the task before the move (in-process) and after it (queued)
answer the same request and the same outcome read, and the diff shown is the real one."""

from __future__ import annotations

import difflib
from typing import Any

import anyio
import pytest

from qakeapi import BackgroundTaskManager, TaskRecord, TaskStatus
from qakeapi.testing import TestClient

from ._docs import ROOT, python_blocks

BEFORE, AFTER = python_blocks("docs/background-to-queued.md")


async def finished_record(ns: dict[str, Any], task_id: str) -> TaskRecord:
    if "tasks" not in ns:
        return await BackgroundTaskManager().wait(task_id, 10)
    with anyio.fail_after(10):
        while True:
            found: TaskRecord | None = await ns["tasks"].get(task_id)
            if found is not None and found.is_terminal:
                return found
            await anyio.sleep(0.02)


@pytest.mark.parametrize(("block", "name"), [(BEFORE, "receipts_before"),
                                              (AFTER, "receipts_after")])
def test_the_task_behaves_the_same_before_and_after_the_move(block: str, name: str) -> None:
    BackgroundTaskManager.reset()
    ns: dict[str, Any] = {"__name__": name}
    exec(compile(block, f"docs/background-to-queued.md:{name}", "exec"), ns)
    with TestClient(ns["app"]) as client:
        response = client.post("/orders/7", params={"email": "a@example.com"})
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        result = client.portal.call(ns["resend_receipt"], 8, "b@example.com")
        assert result == "receipt for order 8 sent to b@example.com"
        found = client.portal.call(finished_record, ns, task_id)
    assert (found.status, found.max_retries, found.timeout) == (TaskStatus.SUCCEEDED, 3, 30)
    assert "receipt for order 7 sent to a@example.com" in str(found.result)
    BackgroundTaskManager.reset()


def changed_lines(lines: list[str]) -> set[str]:
    return {line for line in lines
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))}


def test_the_diff_shown_is_the_change_between_the_blocks() -> None:
    text = (ROOT / "docs/background-to-queued.md").read_text(encoding="utf-8")
    shown = changed_lines(text.split("```diff\n", 1)[1].split("```", 1)[0].splitlines())
    real = changed_lines(list(difflib.unified_diff(BEFORE.splitlines(), AFTER.splitlines(),
                                                   lineterm="", n=0)))
    assert shown == real
