"""The live feed against real storage. SQLite: a page open on a queue nothing writes to costs
one change check per poll interval and no read of the stats, workers or tasks; a change by
another process, or by a worker sharing the dashboard's connection, still reaches the open
page at the next poll. Redis: each poll is a few commands of constant cost."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any

import anyio
import httpx
import redis

from qakeapi.dashboard import DashboardApp, dashboard
from qakeapi.queued_tasks import QueuedTasks, QueueSettings
from qakeapi.types import QueueStats, TaskRecord, WorkerInfo

from ._dashboard_app import TOKEN, build
from ._redis import REDIS_URL, redis_queue_url
from ._server import serve

AUTH = {"X-Dashboard-Token": TOKEN}
INTERVAL = 0.1
IDLE_POLLS = 15


class CountingTasks(QueuedTasks):
    """A real SQLite ``QueuedTasks`` that counts the dashboard's calls into its storage."""

    calls: Counter[str]

    async def change_marker(self) -> Hashable | None:
        self.calls["change_marker"] += 1
        return await super().change_marker()

    async def stats(self) -> QueueStats:
        self.calls["stats"] += 1
        return await super().stats()

    async def workers(self) -> list[WorkerInfo]:
        self.calls["workers"] += 1
        return await super().workers()

    async def get(self, task_id: str) -> TaskRecord | None:
        self.calls["get"] += 1
        return await super().get(task_id)


async def noop() -> None:
    return None




async def follow(url: str, path: str,
                 on_update: Callable[[dict[str, Any]], Awaitable[bool]]) -> None:
    """Read the ``update`` events of the stream at ``path`` (reopened when it ends, as a
    browser does), each handed to ``on_update``, until it returns True."""
    with anyio.fail_after(30):
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
            while True:
                async with client.stream("GET", path) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and await on_update(
                                json.loads(line.removeprefix("data: "))):
                            return


def test_an_open_page_on_an_unchanged_queue_only_checks_for_changes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    tasks = CountingTasks(settings=QueueSettings(url=url, embedded_worker=False))
    tasks.calls = Counter()
    app = dashboard(tasks, auth=TOKEN, poll_interval=INTERVAL, background=False)
    feed = app.feed
    feed.full_read_after = math.inf
    idle: Counter[str] = Counter()

    async def enqueue_elsewhere() -> None:
        """Another connection (as another process would) adds a task."""
        async with QueuedTasks(settings=QueueSettings(url=url,
                                                      embedded_worker=False)) as other:
            await other.enqueue(noop)

    async def on_update(data: dict[str, Any]) -> bool:
        if data.get("count-pending") == "1" and not idle:
            start = Counter(tasks.calls)
            polls = feed.polls
            while feed.polls < polls + IDLE_POLLS:
                await anyio.sleep(INTERVAL / 2)
            idle.update(tasks.calls)
            idle.subtract(start)
            await enqueue_elsewhere()
        elif data.get("count-pending") == "0":
            await enqueue_elsewhere()
        return data.get("count-pending") == "2"

    with serve(app) as base:
        anyio.run(follow, base, "/live", on_update)
    assert idle["stats"] == idle["workers"] == idle["get"] == 0, idle
    assert idle["change_marker"] >= IDLE_POLLS - 1, idle


def _dashboard_of(app: Any, prefix: str) -> DashboardApp:
    [mount] = [r for r in app.routes if getattr(r, "path", "") == prefix]
    return mount.app  # type: ignore[no-any-return]


def test_the_page_follows_progress_and_state_written_through_its_own_connection(
        tmp_path: Path) -> None:
    """The embedded worker shares the dashboard's SQLite connection: its writes do not move
    ``data_version`` and must still show."""
    app, _tasks = build(tmp_path)
    _dashboard_of(app, "/dash").feed.full_read_after = math.inf
    seen: list[dict[str, Any]] = []

    async def on_task_update(data: dict[str, Any]) -> bool:
        seen.append(data)
        if data.get("progress") == 50:
            (tmp_path / "step-2").touch()
        return data.get("status") == "succeeded"

    async def on_overview_update(data: dict[str, Any]) -> bool:
        return data.get("count-succeeded") == "1" and data.get("count-running") == "0"

    with serve(app) as base:
        task_id = httpx.post(f"{base}/add", json={"name": "stepper", "args": [2]}).json()["id"]
        (tmp_path / "step-1").touch()
        anyio.run(follow, base, f"/dash/live/task/{task_id}", on_task_update)
        anyio.run(follow, base, "/dash/live", on_overview_update)
    progress = [data.get("progress") for data in seen]
    assert 50 in progress and progress[-1] == 100, progress
    assert seen[-1]["terminal"] is True


def test_a_redis_poll_is_a_few_constant_cost_commands(tmp_path: Path) -> None:
    """Redis has no change marker: every poll reads, so each read must cost the same on a
    queue of any size — hashes of a few fields and the first entry of two sorted sets, plus
    one hash per watched task (what Redis's MONITOR sees the dashboard send)."""
    with redis_queue_url() as url:
        prefix = url.rsplit("prefix=", 1)[1]
        tasks = QueuedTasks(settings=QueueSettings(url=url, embedded_worker=False))
        app = dashboard(tasks, auth=TOKEN, poll_interval=INTERVAL, background=False)
        feed = app.feed
        watched: list[str] = []
        sent: list[list[str]] = []

        stop = threading.Event()

        def record() -> None:
            """What the server runs for this queue (MONITOR sees every client's commands,
            so it reads in a thread of its own to keep up with a busy shared Redis)."""
            with redis.Redis.from_url(REDIS_URL) as client, client.monitor() as monitor:
                while not stop.is_set():
                    command = monitor.next_command()
                    if prefix in command["command"]:
                        sent.append([command["client_type"], *command["command"].split()])

        async def on_update(data: dict[str, Any]) -> bool:
            polls = feed.polls
            recorder = threading.Thread(target=record, daemon=True)
            recorder.start()
            try:
                with anyio.fail_after(60):
                    while feed.polls < polls + IDLE_POLLS:
                        await anyio.sleep(INTERVAL / 2)
            finally:
                stop.set()
                await anyio.to_thread.run_sync(recorder.join, 30)
            return True

        async def run(base: str) -> None:
            async with QueuedTasks(settings=QueueSettings(url=url,
                                                          embedded_worker=False)) as other:
                for _ in range(200):
                    watched.append((await other.enqueue(noop)).id)
            await follow(base, f"/live/task/{watched[0]}", on_update)

        with serve(app) as base:
            anyio.run(run, base)
    by_clients = Counter(words[1].upper() for words in sent if words[0] != "lua")
    by_scripts = Counter(words[1].upper() for words in sent if words[0] == "lua")
    polls = by_clients["EVALSHA"]
    assert polls >= IDLE_POLLS - 2, sent
    assert set(by_clients) <= {"HGETALL", "EVALSHA"}, by_clients
    assert by_clients["HGETALL"] <= 3 * polls + 3, by_clients  # counts, workers, 1 task
    assert set(by_scripts) <= {"TIME", "ZRANGE", "ZCARD"}, by_scripts
    ranges = [words[3:5] for words in sent if words[0] == "lua" and words[1] == "ZRANGE"]
    assert all(r == ["0", "0"] for r in ranges), ranges
