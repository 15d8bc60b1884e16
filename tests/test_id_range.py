"""``enqueue_id_range_tasks`` and ``iter_with_cursor``: chunks of ids stored in one batch,
bad input refused with nothing stored, and a cursor committed to the task's stored context
before the next id is yielded — so a run that fails, or a worker process SIGKILLed halfway,
resumes after the last committed id, on memory, a real SQLite file and a real Redis."""

from __future__ import annotations

import collections
import math
import signal
import sys
import textwrap
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from qakeapi import Inject, QakeAPI
from qakeapi.constants import ID_RANGE_MAX_TASKS
from qakeapi.exceptions import MissingParentError, SerializationError
from qakeapi.queued_tasks import (
    NewTask,
    QueuedTasks,
    enqueue_id_range_tasks,
    get_context,
    iter_with_cursor,
)
from qakeapi.queued_tasks._context import TaskContext
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.testing import TestClient
from qakeapi.types import TaskRecord, TaskStatus

from ._docs import python_blocks
from ._processes import read_runs, start_worker, stop, wait_until
from ._redis import redis_queue_url
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio

seen: dict[str, list[int]] = collections.defaultdict(list)
fail_once_at: dict[str, int] = {}
queue_holder: dict[str, QueuedTasks] = {}


async def walk(label: str, min_id: int, max_id: int, commit_every: int = 1) -> Any:
    async for item in iter_with_cursor(range(min_id, max_id + 1), commit_every=commit_every):
        seen[label].append(item)
        if fail_once_at.get(label) == item:
            del fail_once_at[label]
            raise RuntimeError(f"failing once at {item}")
    return get_context("cursor")


def walk_sync(label: str, min_id: int, max_id: int, commit_every: int = 1) -> Any:
    for item in iter_with_cursor(range(min_id, max_id + 1), commit_every=commit_every):
        seen[label].append(item)
        if fail_once_at.get(label) == item:
            del fail_once_at[label]
            raise RuntimeError(f"failing once at {item}")
    return get_context("cursor")


async def stored_cursor() -> Any:
    [running] = await queue_holder["tasks"].list(TaskStatus.RUNNING)
    return running.context.get("cursor")


async def check_stored(label: str, min_id: int, max_id: int) -> None:
    previous = None
    async for item in iter_with_cursor(range(min_id, max_id + 1)):
        assert await stored_cursor() == previous, item
        seen[label].append(item)
        previous = item


def check_stored_sync(label: str, min_id: int, max_id: int) -> None:
    previous = None
    for item in iter_with_cursor(range(min_id, max_id + 1)):
        assert anyio.from_thread.run(stored_cursor) == previous, item
        seen[label].append(item)
        previous = item


async def plain_for_in_async_task(min_id: int, max_id: int) -> None:
    for _ in iter_with_cursor(range(min_id, max_id + 1)):
        pass


def label_of(request: pytest.FixtureRequest) -> str:
    return request.node.name


async def chunk_ranges(tasks: QueuedTasks, refs: list[Any]) -> list[tuple[int, int]]:
    records = [await tasks.get(ref.id) for ref in refs]
    return [(r.kwargs["min_id"], r.kwargs["max_id"]) for r in records if r is not None]


async def test_chunks_of_the_ids_are_stored_when_it_returns(queue_url: str  # noqa: F811
                                                             ) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url), embedded_worker=False) as tasks:
        refs = await enqueue_id_range_tasks(tasks, walk, range(0, 1000), chunk_size=300,
                                            label="a", priority=5)
        assert await chunk_ranges(tasks, refs) == [(0, 299), (300, 599), (600, 899),
                                                   (900, 999)]
        first = await tasks.get(refs[0].id)
        assert first is not None
        assert (first.kwargs["label"], first.priority, first.auto_remove) == ("a", 5, True)
        listed = await enqueue_id_range_tasks(tasks, walk, [9, 1, 5, 3, 2, 8, 1],
                                              chunk_size=2, label="b", auto_remove=False)
        assert await chunk_ranges(tasks, listed) == [(1, 2), (3, 5), (8, 9)]
        assert [(await ref.record()).auto_remove for ref in listed] == [False] * 3
        backwards = await enqueue_id_range_tasks(tasks, walk, range(10, 0, -3), chunk_size=3,
                                                 label="c")
        assert await chunk_ranges(tasks, backwards) == [(1, 7), (10, 10)]
        huge = await enqueue_id_range_tasks(tasks, walk, range(0, 10**12), chunk_size=10**9,
                                            label="d")
        assert len(huge) == 1000
        assert (await chunk_ranges(tasks, huge))[-1] == (999 * 10**9, 10**12 - 1)
        assert await enqueue_id_range_tasks(tasks, walk, [], label="e") == []
        assert await enqueue_id_range_tasks(tasks, walk, range(7, 7), label="e") == []
        assert (await tasks.stats()).counts[TaskStatus.PENDING] == 4 + 3 + 2 + 1000


def test_in_a_request_the_chunks_are_stored_when_it_returns() -> None:
    app = QakeAPI()

    @app.post("/reindex")
    async def reindex(tasks: QueuedTasks = Inject(QueuedTasks)) -> dict[str, Any]:
        refs = await enqueue_id_range_tasks(tasks, walk, range(100), chunk_size=25,
                                            label="request", auto_remove=False)
        return {"stored": [await tasks.get(ref.id) is not None for ref in refs]}

    with TestClient(app) as client:
        assert client.post("/reindex").json() == {"stored": [True] * 4}
        wait_until(lambda: len(seen["request"]) == 100, 10, "every id")
    assert sorted(seen["request"]) == list(range(100))


async def test_a_registration_decides_auto_remove() -> None:
    async with QueuedTasks("memory://", embedded_worker=False) as tasks:
        tasks.register(walk, auto_remove=False)
        [ref] = await enqueue_id_range_tasks(tasks, walk, [1], label="x")
        assert (await ref.record()).auto_remove is False


BAD_CALLS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"ids": range(10), "chunk_size": 0}, ValueError, "chunk_size"),
    ({"ids": range(10), "chunk_size": -1}, ValueError, "chunk_size"),
    ({"ids": range(10), "chunk_size": 2.5}, TypeError, "chunk_size"),
    ({"ids": range(10), "chunk_size": math.nan}, TypeError, "chunk_size"),
    ({"ids": range(10), "chunk_size": True}, TypeError, "chunk_size"),
    ({"ids": range(10), "chunk_size": "10"}, TypeError, "chunk_size"),
    ({"ids": range(10, 5)}, ValueError, "wrong side"),
    ({"ids": range(0, 10, -1)}, ValueError, "wrong side"),
    ({"ids": [1, 2.0]}, TypeError, "must be an int"),
    ({"ids": [1, math.nan]}, TypeError, "must be an int"),
    ({"ids": [True]}, TypeError, "must be an int"),
    ({"ids": ["7"]}, TypeError, "must be an int"),
    ({"ids": "123"}, TypeError, "iterable of ints"),
    ({"ids": None}, TypeError, "iterable of ints"),
    ({"ids": 10}, TypeError, "iterable of ints"),
    ({"ids": range(0, 10**30), "chunk_size": 1}, ValueError, "tasks, more than"),
    ({"ids": range(ID_RANGE_MAX_TASKS + 1), "chunk_size": 1}, ValueError, "tasks, more than"),
    ({"ids": range(10), "min_id": 3}, TypeError, "min_id"),
    ({"ids": range(10), "task_kwargs": {"max_id": 3}}, TypeError, "max_id"),
    ({"ids": range(10), "unique_key": "k"}, ValueError, "unique_key"),
    ({"ids": range(10), "extra": object()}, SerializationError, "extra"),
    ({"ids": range(10), "priority": "high"}, TypeError, "priority"),
    ({"ids": range(10), "context": {"a.b": 1}}, ValueError, "context"),
]


async def test_bad_input_is_refused_and_nothing_is_stored(queue_url: str  # noqa: F811
                                                           ) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url), embedded_worker=False) as tasks:
        for call, error, message in BAD_CALLS:
            arguments = {"label": "bad", **call}
            with pytest.raises(error, match=message):
                await enqueue_id_range_tasks(tasks, walk, **arguments)
        with pytest.raises(MissingParentError):
            await enqueue_id_range_tasks(tasks, walk, range(100), chunk_size=10,
                                         label="bad", parent="no-such-task")
        await tasks.flush()
        assert await tasks.list() == []


async def test_a_hook_refusing_one_chunk_says_which_were_added() -> None:
    async with QueuedTasks("memory://", embedded_worker=False) as tasks:
        @tasks.before_store
        def refuse_the_third(task: NewTask) -> None:
            if task.kwargs["min_id"] == 20:
                raise PermissionError("not this one")

        with pytest.raises(PermissionError) as caught:
            await enqueue_id_range_tasks(tasks, walk, range(50), chunk_size=10, label="h")
        assert "the 2 chunk(s) before [20, 29] were added" in "".join(caught.value.__notes__)
        await tasks.flush()
        assert len(await tasks.list()) == 2


@pytest.mark.parametrize("fn", [walk, walk_sync])
@pytest.mark.parametrize("commit_every", [1, 3])
async def test_a_failed_run_resumes_after_the_last_commit(
        queue_url: str, fn: Any,  # noqa: F811
        commit_every: int, request: pytest.FixtureRequest) -> None:
    label = label_of(request)
    fail_once_at[label] = 15
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        [ref] = await enqueue_id_range_tasks(tasks, fn, range(10, 20), chunk_size=10,
                                             label=label, commit_every=commit_every,
                                             auto_remove=False)
        assert await ref.result(20) == 19
        record = await ref.record()
    last_commit = 14 if commit_every == 1 else 12
    assert seen[label] == [*range(10, 16), *range(last_commit + 1, 20)]
    assert (record.attempts, record.context) == (2, {"cursor": 19})


@pytest.mark.parametrize("fn", [check_stored, check_stored_sync])
async def test_each_commit_is_stored_before_the_next_id(
        queue_url: str, fn: Any,  # noqa: F811
        request: pytest.FixtureRequest) -> None:
    label = label_of(request)
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:
        queue_holder["tasks"] = tasks
        [ref] = await enqueue_id_range_tasks(tasks, fn, range(0, 8), chunk_size=8,
                                             label=label, auto_remove=False)
        await ref.result(20)
        assert (await ref.record()).context == {"cursor": 7}
    assert seen[label] == list(range(8))


async def test_a_stored_cursor_is_where_a_new_task_starts() -> None:
    async with QueuedTasks("memory://") as tasks:
        ref = tasks.add_task(walk, "given", 0, 9, context={"cursor": 6}, auto_remove=False)
        assert await ref.result(10) == 9
        assert seen["given"] == [7, 8, 9]
        done = tasks.add_task(walk, "done", 0, 9, context={"cursor": 9})
        assert await done.result(10) == 9
        assert seen["done"] == []
        corrupt = tasks.add_task(walk, "corrupt", 0, 9, context={"cursor": "x"}, max_retries=0)
        failed = await corrupt.wait(10)
        assert failed.error is not None and "cursor stored" in failed.error.message


async def test_a_plain_for_in_an_async_task_is_refused_clearly() -> None:
    async with QueuedTasks("memory://") as tasks:
        failed = await tasks.add_task(plain_for_in_async_task, 0, 3, max_retries=0).wait(10)
        assert failed.status is TaskStatus.FAILED and failed.error is not None
        assert "use `async for`" in failed.error.message


async def test_outside_a_task_every_id_is_yielded_and_nothing_stored() -> None:
    assert [i async for i in iter_with_cursor([5, 1, 3, 1])] == [1, 3, 5]
    assert list(iter_with_cursor(range(4, 0, -1), commit_every=2)) == [1, 2, 3, 4]
    for ids, options, error in [
            ([1, "2"], {}, TypeError), (range(3), {"commit_every": 0}, ValueError),
            (range(3), {"key": ""}, ValueError), (range(3), {"key": "a..b"}, ValueError),
            (range(3), {"commit_every": 1.0}, TypeError)]:
        with pytest.raises(error):
            iter_with_cursor(ids, **options)


async def test_a_save_never_lands_before_an_earlier_one(tmp_path: Path) -> None:
    """The worker's periodic save and a commit may overlap: the older copy must not be
    written last (the cursor would go back)."""
    storage = open_storage(f"sqlite:///{tmp_path}/queue.db")
    await storage.connect()
    try:
        await storage.enqueue([TaskRecord(id="t", name="m:f", created_at=0.0)])
        [claimed] = await storage.claim("w", 1, 30)
        first_write_may_land = anyio.Event()
        calls = 0

        async def slow_first_write(context: dict[str, Any], logs: list[str]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                await first_write_may_land.wait()
            await storage.save_progress("w", claimed.id, context, logs)

        ctx = TaskContext(claimed.id, saver=slow_first_write)
        async with anyio.create_task_group() as tg:
            ctx.set("cursor", 1)
            tg.start_soon(ctx.save)
            await anyio.sleep(0.05)
            ctx.set("cursor", 2)
            tg.start_soon(ctx.save)
            await anyio.sleep(0.05)
            first_write_may_land.set()
        stored = await storage.get(claimed.id)
        assert stored is not None and stored.context == {"cursor": 2}
    finally:
        await storage.close()


# -- a real worker process, SIGKILLed halfway --------------------------------------------

RANGE_APP = '''
import os
import anyio
from qakeapi import QakeAPI
from qakeapi.queued_tasks import iter_with_cursor

app = QakeAPI()
RUNS = os.environ["TASKAPP_RUNS"]


async def walk(min_id, max_id, seconds):
    async for item in iter_with_cursor(range(min_id, max_id + 1)):
        await anyio.sleep(seconds)
        fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{item}\\n".encode())
        finally:
            os.close(fd)
'''

IDS, CHUNK = 240, 60


def queue_read(url: str, ids: list[str]) -> list[TaskRecord]:
    async def read() -> list[TaskRecord]:
        async with QueuedTasks(url, embedded_worker=False) as tasks:
            return [record for task_id in ids if (record := await tasks.get(task_id))]

    return anyio.run(read)


def enqueue_range(directory: Path, url: str) -> list[str]:
    (directory / "taskapp.py").write_text(textwrap.dedent(RANGE_APP))
    sys.path.insert(0, str(directory))
    sys.modules.pop("taskapp", None)
    try:
        import taskapp  # type: ignore[import-not-found]

        async def main() -> list[str]:
            async with QueuedTasks(url, embedded_worker=False) as tasks:
                refs = await enqueue_id_range_tasks(tasks, taskapp.walk, range(IDS),
                                                    chunk_size=CHUNK, seconds=0.05,
                                                    auto_remove=False)
                return [ref.id for ref in refs]

        return anyio.run(main)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("taskapp", None)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_sigkilled_worker_resumes_after_the_last_commit(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKAPP_RUNS", str(tmp_path / "runs.txt"))
    runs_file = tmp_path / "runs.txt"
    sqlite_url = f"sqlite:///{tmp_path}/queue.db"
    with redis_queue_url() if backend == "redis" else nullcontext(sqlite_url) as url:
        ids = enqueue_range(tmp_path, url)
        first = start_worker(tmp_path, url, concurrency=IDS // CHUNK, QUEUE_LEASE_SECONDS="2")
        try:
            wait_until(lambda: len(read_runs(runs_file)) >= IDS // 3, 60, "a third of the ids")
        finally:
            stop(first, signal.SIGKILL)
        at_kill = queue_read(url, ids)
        cursors = {r.kwargs["min_id"]: r.context.get("cursor") for r in at_kill}
        assert all(r.status is TaskStatus.RUNNING for r in at_kill), at_kill
        assert all(c is not None and lo <= c < lo + CHUNK - 1 for lo, c in cursors.items())
        second = start_worker(tmp_path, url, concurrency=IDS // CHUNK,
                              QUEUE_LEASE_SECONDS="2")
        try:
            wait_until(lambda: all(r.status is TaskStatus.SUCCEEDED
                                   for r in queue_read(url, ids)), 90, "every chunk")
        finally:
            stop(second)
        final = queue_read(url, ids)
    runs = collections.Counter(read_runs(runs_file))
    assert set(runs) == set(range(IDS))
    for lo, cursor in cursors.items():
        chunk = range(lo, lo + CHUNK)
        assert all(runs[i] == 1 for i in chunk if i <= cursor), (lo, cursor, runs)
        again = [i for i in chunk if runs[i] > 1]
        assert again in ([], [cursor + 1]), (lo, cursor, again)
    assert {r.kwargs["min_id"]: r.context for r in final} == {
        lo: {"cursor": lo + CHUNK - 1} for lo in cursors}


# -- the docs example ---------------------------------------------------------------------

def test_docs_example_fans_out_and_resumes() -> None:
    [block] = [b for b in python_blocks("docs/queued-tasks.md") if "iter_with_cursor" in b]
    ns: dict[str, Any] = {"__name__": "docs_id_range"}
    exec(compile(block, "docs/queued-tasks.md:iter_with_cursor", "exec"), ns)
    assert sorted(ns["reindexed"]) == sorted([*range(1, 1001), 998, 999, 1000])
