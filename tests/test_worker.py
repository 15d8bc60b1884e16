"""The worker on its own: ``Worker(storage, registry, settings, hooks=...)`` with no
``QueuedTasks``, its hooks, the rows it refuses, and ``tasks.worker()`` — memory, a real
SQLite file, real Redis."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from qakeapi import QakeAPI
from qakeapi.queued_tasks import QueuedTasks, QueueSettings, TaskRegistry, Worker
from qakeapi.queued_tasks.backends import QueueStorage, open_storage
from qakeapi.testing import AsyncTestClient
from qakeapi.types import TaskRecord, TaskStatus

from . import _queue_tasks as t
from ._docs import python_blocks
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def tasks(queue_url: str) -> AsyncIterator[QueuedTasks]:  # noqa: F811
    async with QueuedTasks(settings=fast_settings(queue_url)) as queue:
        yield queue


@pytest.fixture
async def storage(queue_url: str) -> AsyncIterator[QueueStorage]:  # noqa: F811
    opened = open_storage(queue_url)
    await opened.connect()
    try:
        yield opened
    finally:
        await opened.close()


def stored_task(name: str, *args: Any) -> TaskRecord:
    return TaskRecord(id=f"w-{key()}", name=name, args=list(args), kwargs={}, created_at=1.0,
                      max_retries=2)


class Recorder:
    """Hooks that write down what they hear."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, TaskStatus]] = []

    async def on_started(self, record: TaskRecord) -> None:
        self.heard.append(("started", record.id, record.status))

    async def on_finished(self, record: TaskRecord) -> None:
        self.heard.append(("finished", record.id, record.status))


class Raising:
    async def on_started(self, record: TaskRecord) -> None:
        raise RuntimeError("started hook broke")

    async def on_finished(self, record: TaskRecord) -> None:
        raise RuntimeError("finished hook broke")


async def until_terminal(storage: QueueStorage, ids: list[str]) -> dict[str, TaskRecord]:
    with anyio.fail_after(10):
        while True:
            found = {i: await storage.get(i) for i in ids}
            if all(r is not None and r.is_terminal for r in found.values()):
                return {i: r for i, r in found.items() if r is not None}
            await anyio.sleep(0.02)


async def test_a_worker_runs_without_a_queue(storage: QueueStorage, queue_url: str) -> None:  # noqa: F811
    registry = TaskRegistry()
    registry.register(t.add)
    registry.register(t.fail_times)
    flaky = key()
    records = [stored_task("tests._queue_tasks:add", 2, 3),
               stored_task("tests._queue_tasks:fail_times", flaky, 1),
               stored_task("tests._queue_tasks:multiply", 2, 3)]
    await storage.enqueue(records)
    hooks = Recorder()
    worker = Worker(storage, registry, fast_settings(queue_url), hooks=hooks, concurrency=2)
    assert worker.concurrency == 2 and not worker.stopping
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        assert [w.id for w in await storage.list_workers()] == [worker.id]
        done = await until_terminal(storage, [r.id for r in records])
        await worker.stop_and_wait()
    assert worker.stopping and await storage.list_workers() == []
    added, retried, unregistered = (done[r.id] for r in records)
    assert (added.status, added.result) == (TaskStatus.SUCCEEDED, 5)
    assert (retried.status, retried.attempts, retried.result) == (
        TaskStatus.SUCCEEDED, 2, "ok after 2")
    assert unregistered.status is TaskStatus.FAILED
    assert unregistered.error is not None and unregistered.error.type == "TaskNotRegistered"
    assert [(h, s) for h, i, s in hooks.heard if i == added.id] == [
        ("started", TaskStatus.RUNNING), ("finished", TaskStatus.SUCCEEDED)]
    assert [(h, s) for h, i, s in hooks.heard if i == retried.id] == [
        ("started", TaskStatus.RUNNING), ("finished", TaskStatus.PENDING),
        ("started", TaskStatus.RUNNING), ("finished", TaskStatus.SUCCEEDED)]
    assert ("finished", unregistered.id, TaskStatus.FAILED) in hooks.heard


async def test_hooks_that_raise_are_logged_and_change_nothing(
        storage: QueueStorage, queue_url: str,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    registry = TaskRegistry()
    registry.register(t.add)
    record = stored_task("tests._queue_tasks:add", 20, 22)
    await storage.enqueue([record])
    worker = Worker(storage, registry, fast_settings(queue_url), hooks=Raising())
    with caplog.at_level(logging.ERROR, logger="qakeapi.worker"):
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            done = await until_terminal(storage, [record.id])
            second = stored_task("tests._queue_tasks:add", 1, 1)
            await storage.enqueue([second])
            done |= await until_terminal(storage, [second.id])
            await worker.stop_and_wait()
    assert (done[record.id].result, done[second.id].result) == (42, 2)
    broke = [r.exc_info[1] for r in caplog.records if r.exc_info and "hook" in r.message]
    assert sorted(map(str, broke)) == sorted(["started hook broke", "finished hook broke"] * 2)


async def test_bad_worker_arguments_are_refused(tasks: QueuedTasks) -> None:
    storage, registry, settings = tasks.storage, tasks.registry, tasks.settings
    with pytest.raises(TypeError, match=r"tasks\.worker\(\)"):
        Worker(tasks, registry, settings)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registry"):
        Worker(storage, {}, settings)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="settings"):
        Worker(storage, registry, {"url": "memory://"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        Worker(storage, registry, settings, concurrency=0)
    with pytest.raises(TypeError, match="concurrency"):
        Worker(storage, registry, settings, concurrency="4")  # type: ignore[arg-type]
    assert Worker(storage, registry, settings).concurrency == settings.max_workers


async def test_tasks_worker_reports_to_the_queue_and_the_app_events(
        queue_url: str) -> None:  # noqa: F811
    app = QakeAPI(import_name=__name__)
    app.queued_tasks = QueuedTasks(settings=fast_settings(queue_url, embedded_worker=False))
    heard: list[tuple[str, str]] = []

    @app.on("task:*")
    async def listen(name: str, record: TaskRecord) -> None:
        heard.append((name, record.id))

    tasks = app.queued_tasks
    async with AsyncTestClient(app):
        await tasks.start()
        assert tasks.embedded_worker is None
        worker = tasks.worker(concurrency=3)
        assert (worker.storage, worker.registry, worker.hooks) == (
            tasks.storage, tasks.registry, tasks.hooks)
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            ref = tasks.add_task(t.add, 1, 2)
            assert await ref.result(10) == 3
            await worker.stop_and_wait()
    assert [name for name, task_id in heard if task_id == ref.id] == [
        "task:created", "task:started", "task:succeeded"]


async def test_unknown_task_name_fails_and_worker_keeps_going(tasks: QueuedTasks) -> None:
    evil = TaskRecord(id="evil-" + key(), name="os:system", args=["echo pwned"], kwargs={},
                      created_at=1.0)
    await tasks.storage.enqueue([evil])
    ref_record = None
    with anyio.fail_after(10):
        while ref_record is None or not ref_record.is_terminal:
            ref_record = await tasks.get(evil.id)
            await anyio.sleep(0.02)
    assert ref_record.status is TaskStatus.FAILED
    assert ref_record.error is not None and ref_record.error.type == "TaskNotRegistered"
    assert await tasks.add_task(t.add, 1, 1).result(5) == 2


async def test_corrupt_arguments_fail_clearly(tasks: QueuedTasks) -> None:
    bad = TaskRecord(id="bad-" + key(), name="tests._queue_tasks:add",
                     args=[{"__qk__": "nonsense", "v": 1}], kwargs={}, created_at=1.0)
    tasks.register(t.add)
    await tasks.storage.enqueue([bad])
    with anyio.fail_after(10):
        while not (record := await tasks.get(bad.id)).is_terminal:  # type: ignore[union-attr]
            await anyio.sleep(0.02)
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "CorruptTaskError"


async def test_the_documented_worker_script_runs_tasks_another_process_stored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [example] = [b for b in python_blocks("docs/queued-tasks.md") if "class PrintHooks" in b]
    ns: dict[str, Any] = {"__name__": "docs_worker"}
    exec(example, ns)
    url = f"sqlite:///{tmp_path}/queue.db"
    async with QueuedTasks(settings=QueueSettings(url=url),
                           embedded_worker=False) as producer:
        ref = await producer.enqueue(ns["resize"], 7)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ns["run_worker"], url, stop)
            assert await ref.result(10) == "resized 7"
            stop.set()
        assert await producer.workers() == []
    assert capsys.readouterr().out.splitlines() == [f"started {ref.id}",
                                                     f"succeeded {ref.id}"]
