"""When an app's queue starts: a queue costs nothing until it is used.

Real apps on a real SQLite file: an app that never registers nor adds a queued task opens no
storage and runs no worker; the first use starts both; an app that declares tasks (or whose
SQLite queue exists already) starts them at startup, so its worker runs what other
processes stored."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from qakeapi import QakeAPI
from qakeapi.exceptions import ConfigurationError, QueueError
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.testing import AsyncTestClient
from qakeapi.types import TaskRecord, TaskStatus

from . import _queue_tasks as t
from .test_queue import fast_settings

pytestmark = pytest.mark.anyio


def sqlite_app(db: Path) -> QakeAPI:
    app = QakeAPI(import_name=__name__)
    app.queued_tasks = QueuedTasks(settings=fast_settings(f"sqlite:///{db}"))
    app.container.register(QueuedTasks, app.queued_tasks)

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/add")
    async def add() -> dict[str, str]:
        return {"id": app.queued_tasks.add_task(t.add, 2, 3).id}

    return app


async def finished(tasks: QueuedTasks, task_id: str) -> TaskRecord:
    with anyio.fail_after(10):
        while (record := await tasks.get(task_id)) is None or not record.is_terminal:
            await anyio.sleep(0.02)
    return record


current: dict[str, QueuedTasks] = {}


def add_from_a_thread(n: int) -> str:
    """A plain task (it runs in a worker thread) that adds a task, outside any request."""
    return current["queue"].add_task(t.add, n, n).id


def queue_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_an_app_that_never_uses_the_queue_opens_nothing(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    app = sqlite_app(db)
    threads = set(threading.enumerate())
    async with AsyncTestClient(app) as client:
        for _ in range(3):
            assert (await client.get("/plain")).json() == {"ok": True}
        tasks = app.queued_tasks
        assert (tasks.running, tasks.started, tasks.embedded_worker) == (True, False, None)
        assert set(threading.enumerate()) - threads == set()  # idle threads may end meanwhile
        with pytest.raises(QueueError, match="starts on first use"):
            tasks.storage  # noqa: B018
    assert queue_files(tmp_path) == []


async def test_the_first_add_task_in_a_request_starts_the_queue(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    app = sqlite_app(db)
    async with AsyncTestClient(app) as client:
        assert not db.exists()
        response = await client.post("/add")
        assert response.status_code == 200
        tasks = app.queued_tasks
        assert db.exists() and tasks.started and tasks.embedded_worker is not None
        record = await tasks.get(response.json()["id"])
        assert record is not None  # stored before the response started
        assert (await finished(tasks, record.id)).result == 5
        assert [w.id for w in await tasks.workers()] == [tasks.embedded_worker.id]
        second = (await client.post("/add")).json()["id"]
        assert (await finished(tasks, second)).status is TaskStatus.SUCCEEDED
    assert app.queued_tasks.embedded_worker is None and not app.queued_tasks.started


async def test_the_first_use_outside_a_request_starts_the_queue(tmp_path: Path) -> None:
    app = sqlite_app(tmp_path / "queue.db")
    async with AsyncTestClient(app):
        ref = app.queued_tasks.add_task(t.multiply, 6, 7)
        assert await ref.result(10) == 42
    app = sqlite_app(tmp_path / "other.db")
    async with AsyncTestClient(app):
        assert await app.queued_tasks.stats() is not None  # a read is a use too
        assert (tmp_path / "other.db").exists() and app.queued_tasks.started


async def test_a_plain_task_in_a_thread_adds_the_first_task_outside_a_request(
        tmp_path: Path) -> None:
    current["queue"] = tasks = QueuedTasks(settings=fast_settings(f"sqlite:///{tmp_path}/q.db"))
    async with tasks:
        child = await (await tasks.enqueue(add_from_a_thread, 4)).result(10)
        assert (await finished(tasks, child)).result == 8
    with pytest.raises(QueueError, match="not started"):
        add_from_a_thread(1)


async def test_concurrent_first_uses_start_one_worker(tmp_path: Path) -> None:
    app = sqlite_app(tmp_path / "queue.db")
    async with AsyncTestClient(app) as client:
        ids: list[str] = []

        async def post() -> None:
            ids.append((await client.post("/add")).json()["id"])

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(post)
        assert len(await app.queued_tasks.workers()) == 1
        for task_id in ids:
            assert (await finished(app.queued_tasks, task_id)).result == 5


async def test_a_registered_task_starts_the_queue_at_startup(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    app = sqlite_app(db)
    app.queued_tasks.register(t.echo)
    async with AsyncTestClient(app):
        tasks = app.queued_tasks
        assert db.exists() and tasks.embedded_worker is not None
        async with QueuedTasks(settings=fast_settings(f"sqlite:///{db}"),
                               embedded_worker=False) as elsewhere:
            ref = await elsewhere.enqueue(t.echo, "from another producer")
            assert await ref.result(10) == "from another producer"
            [worker] = await elsewhere.workers()
            assert worker.id == tasks.embedded_worker.id


async def test_an_existing_sqlite_queue_starts_at_startup(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    async with QueuedTasks(settings=fast_settings(f"sqlite:///{db}"),
                           embedded_worker=False) as earlier:
        waiting = (await earlier.enqueue(t.add, 20, 22)).id
    app = sqlite_app(db)
    async with AsyncTestClient(app):
        assert app.queued_tasks.embedded_worker is not None
        assert (await finished(app.queued_tasks, waiting)).result == 42


async def test_a_bad_queue_url_fails_at_startup_not_at_first_use() -> None:
    app = QakeAPI(queue_url="postgres://localhost/db")
    with pytest.raises(ConfigurationError, match="unknown QUEUE_URL scheme 'postgres'"):
        async with AsyncTestClient(app):
            pass


async def test_a_queue_that_cannot_open_answers_503_and_serves_on(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    app = sqlite_app(tmp_path / "file" / "queue.db")
    async with AsyncTestClient(app) as client:
        refused = await client.post("/add")
        assert refused.status_code == 503
        assert "could not queue tasks" in refused.json()["detail"]
        assert (await client.get("/plain")).json() == {"ok": True}
        assert not app.queued_tasks.started
    assert (tmp_path / "file").read_text() == "not a directory"


async def test_start_outside_the_lifespan_is_a_clear_error() -> None:
    tasks = QueuedTasks()
    with pytest.raises(QueueError, match="not started"):
        await tasks.start()
    with pytest.raises(QueueError, match="not started"):
        tasks.worker()
    with pytest.raises(QueueError, match="not started"):
        await tasks.get("x")


async def test_start_opens_an_unused_queue_at_once(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    app = sqlite_app(db)
    async with AsyncTestClient(app):
        await app.queued_tasks.start()
        await app.queued_tasks.start()
        assert db.exists() and app.queued_tasks.embedded_worker is not None
        with pytest.raises(QueueError, match="before it starts"):
            app.queued_tasks.configure(url="memory://")
