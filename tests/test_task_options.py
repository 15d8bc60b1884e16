"""Task options are checked once, where they are given: the same refusals for background
tasks, queued tasks on every backend, registrations and settings — and nothing is stored
or started by a refused call."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager, QakeAPI, TaskStatus
from qakeapi.core._background_settings import BackgroundSettings
from qakeapi.core.background import add_background_task
from qakeapi.exceptions import ConfigurationError, Retry
from qakeapi.queued_tasks import QueuedTasks, QueueSettings
from qakeapi.testing import AsyncTestClient

from . import _queue_tasks as t
from .test_background import manager  # noqa: F401 - the running manager fixture
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio

NAN, INF = math.nan, math.inf

# (option, bad value, expected error): identical for every backend.
QUEUED_BAD_OPTIONS: list[tuple[str, Any, type[Exception]]] = [
    ("delay", NAN, ValueError), ("delay", INF, ValueError), ("delay", -1, ValueError),
    ("delay", 1e12, ValueError), ("delay", "5", TypeError), ("delay", True, TypeError),
    ("priority", "high", TypeError), ("priority", 10**19, ValueError),
    ("priority", 1001, ValueError), ("priority", -1001, ValueError),
    ("priority", 1.5, TypeError), ("priority", True, TypeError),
    ("max_retries", -1, ValueError), ("max_retries", 10**6, ValueError),
    ("max_retries", 2.0, TypeError), ("max_retries", NAN, TypeError),
    ("max_retries", False, TypeError),
    ("timeout", NAN, ValueError), ("timeout", INF, ValueError), ("timeout", -1, ValueError),
    ("timeout", "30", TypeError),
    ("unique_key", "", ValueError), ("unique_key", "k" * 257, ValueError),
    ("unique_key", "\ud800", ValueError), ("unique_key", 5, TypeError),
    ("parent", 5, TypeError), ("parent", "", ValueError), ("parent", ["\ud800"], ValueError),
    ("parent", [None], TypeError), ("parent", {"id": "x"}, TypeError),
    ("task_kwargs", [("b", 1)], TypeError), ("task_kwargs", {1: 2}, TypeError),
]


async def test_bad_queued_options_are_refused_alike_on_every_backend(queue_url: str  # noqa: F811
                                                                     ) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        for option, value, error in QUEUED_BAD_OPTIONS:
            with pytest.raises(error, match=option):
                tasks.add_task(t.add, 1, 2, **{option: value})
            with pytest.raises(error, match=option):
                await tasks.enqueue(t.add, 1, 2, **{option: value})
        await tasks.flush()
        assert await tasks.list() == []
        edge = tasks.add_task(t.add, 2, 3, delay=0, priority=1000, max_retries=0, timeout=0,
                              unique_key="k" * 256)
        low = tasks.add_task(t.add, 1, 1, priority=-1000, parent=[edge, edge.id])
        assert await low.result(10) == 2
        record = await edge.record()
        assert (record.status, record.priority, record.max_retries) == (
            TaskStatus.SUCCEEDED, 1000, 0)
        assert len(await tasks.list()) == 2


async def test_retry_with_a_bad_delay_fails_the_task_naming_it(queue_url: str  # noqa: F811
                                                               ) -> None:
    with pytest.raises(ValueError, match="delay"):
        Retry(delay=NAN)
    with pytest.raises(TypeError, match="delay"):
        Retry(delay="soon")  # type: ignore[arg-type]
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        record = await tasks.add_task(t.retry_with, "nan", max_retries=0).wait(10)
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "ValueError"
    assert "delay" in record.error.message


async def test_bad_registration_options_are_refused() -> None:
    tasks = QueuedTasks()
    for options, error in (({"timeout": NAN}, ValueError), ({"priority": "high"}, TypeError),
                           ({"max_retries": -1}, ValueError), ({"max_retries": True}, TypeError),
                           ({"no_retry_on": [1]}, TypeError), ({"name": ""}, ValueError)):
        with pytest.raises(error, match=next(iter(options))):
            tasks.task(**options)(t.add)
        with pytest.raises(error, match=next(iter(options))):
            tasks.register(t.multiply, **options)
    tasks.register(t.multiply, no_retry_on=t.AuthError, timeout=5, priority=3)


def test_bad_queue_settings_from_the_environment_name_their_variable() -> None:
    for variable, value in (
        ("QUEUE_TASK_TIMEOUT", "nan"), ("QUEUE_TASK_TIMEOUT", "inf"),
        ("QUEUE_TASK_TIMEOUT", "-1"), ("QUEUE_LEASE_SECONDS", "nan"),
        ("QUEUE_LEASE_SECONDS", "0"), ("QUEUE_SHUTDOWN_GRACE", "inf"),
        ("QUEUE_RETENTION_SECONDS", "nan"), ("QUEUE_MAX_RETRIES", "-1"),
        ("QUEUE_MAX_RETRIES", "100000"), ("QUEUE_MAX_WORKERS", "0"),
    ):
        with pytest.raises(ConfigurationError, match=variable):
            QueueSettings.from_env({variable: value})


def test_the_cli_refuses_a_nan_timeout_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qakeapi", "queue", "status", "--url",
         f"sqlite:///{tmp_path}/queue.db"], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, QUEUE_TASK_TIMEOUT="nan"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: QueueSettings.task_timeout (QUEUE_TASK_TIMEOUT) must be a finite number of "
        "seconds from 0 to 315,360,000, got nan"]


async def test_bad_background_settings_are_refused() -> None:
    BackgroundTaskManager.reset()
    stopped = BackgroundTaskManager()
    for field, value, error in (("shutdown_grace", NAN, ValueError),
                                ("retain_seconds", INF, ValueError),
                                ("thread_limit", True, TypeError),
                                ("max_pending", 2.5, TypeError),
                                ("max_concurrency", 0, ValueError),
                                ("retain_finished", -1, ValueError)):
        with pytest.raises(error, match=field):
            stopped.configure(**{field: value})
        with pytest.raises(error, match=field):
            BackgroundSettings(**{field: value})
    assert stopped.settings == BackgroundSettings()
    BackgroundTaskManager.reset()


BACKGROUND_BAD_OPTIONS: list[tuple[str, Any, type[Exception]]] = [
    ("timeout", NAN, ValueError), ("timeout", INF, ValueError), ("timeout", -1, ValueError),
    ("timeout", "1", TypeError), ("timeout", True, TypeError),
    ("max_retries", -1, ValueError), ("max_retries", 10**6, ValueError),
    ("max_retries", True, TypeError), ("max_retries", 1.5, TypeError),
    ("retries", -1, ValueError), ("retries", True, TypeError),
    ("task_kwargs", [("x", 1)], TypeError),
]


async def ok(x: int = 1) -> int:
    return x


@pytest.mark.filterwarnings("ignore:the background task option retries:DeprecationWarning")
async def test_bad_background_options_are_refused_and_the_manager_lives_on(
        manager: BackgroundTaskManager) -> None:  # noqa: F811
    for option, value, error in [*BACKGROUND_BAD_OPTIONS, ("wait", "yes", TypeError)]:
        with pytest.raises(error, match=option):
            await manager.add_task(ok, **{option: value})
    for option, value, error in BACKGROUND_BAD_OPTIONS:
        with pytest.raises(error, match=option):
            await add_background_task(ok, **{option: value})
    assert len(manager.tasks) == 0 and manager.running
    task_id = await manager.add_task(ok, 2, timeout=0, max_retries=0, wait=True)
    record = manager.tasks[task_id]
    assert (record.status, record.result, record.timeout) == (TaskStatus.SUCCEEDED, 2, None)


async def test_a_request_with_a_nan_timeout_does_not_break_the_next_requests() -> None:
    BackgroundTaskManager.reset()
    app = QakeAPI()
    ids: list[str] = []

    @app.post("/run")
    async def run(timeout: str) -> dict[str, bool]:
        ids.append(await add_background_task(ok, 7, timeout=float(timeout)))
        return {"queued": True}

    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        assert (await client.post("/run", params={"timeout": "nan"})).status_code == 500
        for _ in range(3):
            assert (await client.post("/run", params={"timeout": "5"})).status_code == 200
        manager = BackgroundTaskManager()
        assert manager.running and len(ids) == 3
        for task_id in ids:
            assert (await manager.wait(task_id, 10)).status is TaskStatus.SUCCEEDED
    BackgroundTaskManager.reset()
