"""docs/background-tasks.md, "Differences from FastAPI's BackgroundTasks": the example runs,
and what the section says of tasks added by one request holds."""

from __future__ import annotations

from typing import Any

import anyio

from qakeapi import BackgroundTaskManager, QakeAPI, TaskStatus
from qakeapi.core.background import add_background_task
from qakeapi.testing import TestClient

from ._docs import python_blocks
from ._processes import wait_until


def test_ordered_steps_example() -> None:
    [block] = [b for b in python_blocks("docs/background-tasks.md") if "def fulfil" in b]
    ns: dict[str, Any] = {"__name__": "docs_background_order"}
    exec(compile(block, "docs/background-tasks.md:fulfil", "exec"), ns)
    with TestClient(ns["app"]) as client:
        assert client.post("/orders/7").json() == {"order": 7}
        wait_until(lambda: len(ns["done"]) == 2, 10, "both steps")
    assert ns["done"] == ["charged 7", "receipt 7"]


def test_tasks_of_one_request_run_concurrently_and_a_failure_stops_none() -> None:
    BackgroundTaskManager.reset()
    app = QakeAPI()
    manager = BackgroundTaskManager()
    names = {"waits_for_a_later_task", "fails", "later"}
    later_started = anyio.Event()

    async def waits_for_a_later_task() -> str:
        with anyio.fail_after(10):
            await later_started.wait()
        return "saw the later task"

    async def fails() -> None:
        raise RuntimeError("this one fails")

    async def later() -> str:
        later_started.set()
        return "ran"

    @app.post("/three")
    async def three() -> dict:
        for fn in (waits_for_a_later_task, fails, later):
            await add_background_task(fn)
        return {"added": 3}

    with TestClient(app) as client:
        assert client.post("/three").json() == {"added": 3}

        def finished() -> dict[str, TaskStatus]:
            records = [r for r in manager.tasks.values() if r.is_terminal]
            return {r.name.rsplit(".", 1)[-1]: r.status for r in records
                    if r.name.rsplit(".", 1)[-1] in names}

        wait_until(lambda: len(finished()) == 3, 15, "all three tasks")
        assert finished() == {"waits_for_a_later_task": TaskStatus.SUCCEEDED,
                              "fails": TaskStatus.FAILED, "later": TaskStatus.SUCCEEDED}
