"""Live pages: one shared read of storage per dashboard app, pushed as server-sent events.

Open pages wait on one :class:`LiveFeed`. While at least one waits, whichever finds the data
older than the poll interval polls storage once for everyone; the others wait for that poll.
A poll first asks the storage whether anything changed since the last read (its change
marker: on SQLite ``PRAGMA data_version``, which reads no page of the file) and reads the
stats, the workers and the tasks open pages watch only if something did (or a page watches
a task not read yet, or the last read is ``DASHBOARD_FULL_READ_SECONDS`` old). So a page open
on a queue nothing writes to costs one change check per interval. Backends without a cheap
marker (Redis: the read is three O(1) commands and one hash per watched task; memory) are
read at every poll. With no page open nothing reads storage and no task runs: the feed has
no loop of its own.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..constants import (
    DASHBOARD_FULL_READ_SECONDS,
    DASHBOARD_LOG_LINES,
    DASHBOARD_POLL_BACKOFF,
    DASHBOARD_STREAM_SECONDS,
)
from ..types import QueueStats, TaskRecord, TaskStatus, WorkerInfo
from ._data import Source
from ._markup import ago, progress_value
from ._views import context_html

__all__ = ["LiveFeed", "Snapshot", "event_stream", "overview_payload", "task_payload"]

logger = logging.getLogger("qakeapi.dashboard")
RECONNECT_MS = 500


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int = 0
    stats: QueueStats | None = None
    workers: int = 0
    tasks: dict[str, TaskRecord | None] = field(default_factory=dict)


class LiveFeed:
    """The shared poll behind every open live page of one dashboard app. ``polls`` counts
    the polls, ``reads`` the ones that read the data (the others found no change)."""

    def __init__(self, source: Source, interval: float,
                 full_read_after: float = DASHBOARD_FULL_READ_SECONDS) -> None:
        self._source = source
        self.interval = interval
        self.full_read_after = full_read_after
        self._watched: Counter[str] = Counter()
        self.pages = 0
        self.polls = 0
        self.reads = 0
        self._snapshot = Snapshot()
        self._polled_at = -math.inf
        self._read_at = -math.inf
        self._marker: Hashable | None = None
        self._workers: list[WorkerInfo] = []
        self._lock: anyio.Lock | None = None
        self._changed: anyio.Event | None = None

    @asynccontextmanager
    async def watching(self, task_id: str | None) -> AsyncIterator[None]:
        if self.pages == 0:
            self._lock, self._changed = anyio.Lock(), anyio.Event()
        self.pages += 1
        if task_id is not None:
            self._watched[task_id] += 1
            self._polled_at = -math.inf
        try:
            yield
        finally:
            self.pages -= 1
            if task_id is not None:
                self._watched[task_id] -= 1
                if not self._watched[task_id]:
                    del self._watched[task_id]

    async def next(self, seen: int) -> Snapshot:
        """The first snapshot newer than version ``seen`` (polling storage when due)."""
        assert self._lock is not None
        while True:
            if self._snapshot.version > seen:
                return self._snapshot
            wait = self._polled_at + self.interval - time.monotonic()
            if wait <= 0 and not self._lock.locked():
                async with self._lock:
                    if self._polled_at + self.interval <= time.monotonic():
                        await self._poll()
                continue
            changed = self._changed
            assert changed is not None
            with anyio.move_on_after(max(wait, 0.05)):
                await changed.wait()

    def _unchanged(self, marker: Hashable | None, now: float) -> bool:
        return (marker is not None and marker == self._marker
                and now - self._read_at < self.full_read_after
                and all(task_id in self._snapshot.tasks for task_id in self._watched))

    async def _poll(self) -> None:
        """Poll storage once for every open page (module docstring). The next poll waits at
        least ``DASHBOARD_POLL_BACKOFF`` times as long as this one took (a huge queue whose
        counts are slow to read is read less often, never back to back)."""
        self.polls += 1
        started = time.monotonic()
        try:
            marker = await self._source.tasks.change_marker()
            if self._unchanged(marker, started):
                self._publish(self._snapshot.stats, self._snapshot.tasks)
                return
            self.reads += 1
            stats = await self._source.tasks.stats()
            workers = await self._source.tasks.workers()
            tasks = {task_id: await self._source.record(task_id) for task_id in self._watched}
        except Exception:
            logger.exception("the dashboard could not read the queue")
            return
        finally:
            took = time.monotonic() - started
            self._polled_at = started + max(0.0, took * DASHBOARD_POLL_BACKOFF - self.interval)
        self._marker, self._read_at, self._workers = marker, started, workers
        self._publish(stats, tasks)

    def _publish(self, stats: QueueStats | None, tasks: dict[str, TaskRecord | None]) -> None:
        """A new snapshot for the waiting pages; the workers' liveness (and the ages the
        pages show) are worked out again now, read or not."""
        workers = len(self._source.alive(self._workers))
        self._snapshot = Snapshot(self._snapshot.version + 1, stats, workers, tasks)
        assert self._changed is not None
        changed, self._changed = self._changed, anyio.Event()
        changed.set()


def overview_payload(snapshot: Snapshot) -> dict[str, Any]:
    if snapshot.stats is None:
        return {}
    counts = snapshot.stats.counts
    data: dict[str, Any] = {f"count-{s.value}": f"{counts.get(s, 0):,}" for s in TaskStatus}
    data["depth"] = f"{counts.get(TaskStatus.PENDING, 0):,}"
    data["oldest"] = ago(snapshot.stats.oldest_pending_at)
    data["workers"] = str(snapshot.workers)
    return data


def task_payload(task_id: str) -> Callable[[Snapshot], dict[str, Any]]:
    def payload(snapshot: Snapshot) -> dict[str, Any]:
        record = snapshot.tasks.get(task_id)
        if record is None:
            return {}
        return {"status": record.status.value, "progress": progress_value(record.context),
                "logs": list(record.logs)[-DASHBOARD_LOG_LINES:],
                "attempts": f"{record.attempts} of {record.max_retries + 1}",
                "context_html": context_html(record), "terminal": record.is_terminal}
    return payload


async def event_stream(feed: LiveFeed, task_id: str | None,
                       payload: Callable[[Snapshot], dict[str, Any]]) -> AsyncIterator[str]:
    """Server-sent events: an ``update`` whenever the page's data changes, for
    ``DASHBOARD_STREAM_SECONDS``; then the browser reconnects (and gets the current data)."""
    async with feed.watching(task_id):
        yield f"retry: {RECONNECT_MS}\n\n"
        seen, last = 0, ""
        deadline = time.monotonic() + DASHBOARD_STREAM_SECONDS
        while True:
            snapshot = None
            with anyio.move_on_after(deadline - time.monotonic()):
                snapshot = await feed.next(seen)
            if snapshot is None:
                return
            seen = snapshot.version
            data = json.dumps(payload(snapshot), separators=(",", ":"))
            if data != last and data != "{}":
                last = data
                yield f"event: update\ndata: {data}\n\n"
