"""A background task's handle: the id itself, with TaskRef's read methods."""

from __future__ import annotations

import json

import anyio
import pytest

from qakeapi import BackgroundTaskManager, QakeAPI, TaskStatus
from qakeapi.core.background import BackgroundTaskRef, add_background_task
from qakeapi.exceptions import TaskCancelledError, TaskFailedError, TaskWaitTimeout
from qakeapi.testing import AsyncTestClient

from .test_background import double, fail, manager  # noqa: F401 - manager: a fixture

pytestmark = pytest.mark.anyio


async def test_the_handle_is_the_id_and_reads_the_outcome(
        manager: BackgroundTaskManager) -> None:  # noqa: F811
    ref = await add_background_task(double, 4)
    assert isinstance(ref, BackgroundTaskRef) and isinstance(ref, str)
    assert ref == ref.id and type(ref.id) is str and ref.id.startswith("bg-")
    assert json.dumps({"task_id": ref}) == json.dumps({"task_id": ref.id})
    assert await ref.result(timeout=10) == 8
    assert await ref.status() is TaskStatus.SUCCEEDED
    assert (await ref.wait(10)) is manager.tasks[ref] is manager.tasks[ref.id]
    assert (await ref.record()).result == 8
    await ref.stored()


async def test_a_failed_or_cancelled_task_raises_from_result(
        manager: BackgroundTaskManager) -> None:  # noqa: F811
    failed = await manager.add_task(fail, "no", wait=True)
    assert manager.tasks[failed].status is TaskStatus.FAILED
    with pytest.raises(TaskFailedError, match="ValueError: no") as caught:
        await failed.result(timeout=10)
    assert caught.value.record is manager.tasks[failed]

    gate = anyio.Event()
    blocked = await add_background_task(gate.wait)
    with pytest.raises(TaskWaitTimeout):
        await blocked.wait(timeout=0.05)
    assert (await blocked.cancel("not needed")).status is TaskStatus.CANCELLED
    with pytest.raises(TaskCancelledError, match="not needed"):
        await blocked.result(timeout=10)


async def test_a_handler_returns_the_handle_as_a_plain_id() -> None:
    BackgroundTaskManager.reset()
    app = QakeAPI()

    @app.post("/double/{x}")
    async def start(x: int) -> dict[str, str]:
        return {"task_id": await add_background_task(double, x)}

    async with AsyncTestClient(app) as client:
        response = await client.post("/double/21")
        task_id = response.json()["task_id"]
        record = await BackgroundTaskManager().wait(task_id, timeout=10)
        assert (record.status, record.result) == (TaskStatus.SUCCEEDED, 42)
    BackgroundTaskManager.reset()
