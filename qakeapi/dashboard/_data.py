"""What the pages show, read through the public ``QueuedTasks`` API (and the process's
``BackgroundTaskManager``), with the ``mask`` hook applied to every record."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..constants import (
    DASHBOARD_CHART_BUCKETS,
    DASHBOARD_GRAPH_TASKS,
    DASHBOARD_NAME_SCAN_LIMIT,
    DASHBOARD_PAGE_SIZE,
    DASHBOARD_RECENT_SAMPLE,
)
from ..core.background import BackgroundTaskManager
from ..queued_tasks import QueuedTasks
from ..types import QueueStats, TaskRecord, TaskStatus, WorkerInfo

__all__ = ["ChartBucket", "ListPage", "Mask", "Overview", "Source"]

Mask = Callable[[TaskRecord], TaskRecord]
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ChartBucket:
    start: float
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class LiveWorker:
    info: WorkerInfo
    running: list[TaskRecord]


@dataclass(frozen=True, slots=True)
class Overview:
    stats: QueueStats
    workers: list[LiveWorker]
    chart: list[ChartBucket]
    sampled: bool
    """True when the chart counts only the newest ``DASHBOARD_RECENT_SAMPLE`` tasks."""
    background_counts: dict[TaskStatus, int] | None
    background: list[TaskRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListPage:
    records: list[TaskRecord]
    next_offset: int | None
    scanned_out: bool
    """True when a name filter stopped reading before the page was full."""


def chart(records: list[TaskRecord], now: float) -> list[ChartBucket]:
    width = HOUR / DASHBOARD_CHART_BUCKETS
    start = now - HOUR
    counts = [[0, 0] for _ in range(DASHBOARD_CHART_BUCKETS)]
    for record in records:
        if record.finished_at is None or record.finished_at < start:
            continue
        index = min(int((record.finished_at - start) // width), DASHBOARD_CHART_BUCKETS - 1)
        counts[index][record.status is TaskStatus.FAILED] += 1
    return [ChartBucket(start + i * width, ok, bad) for i, (ok, bad) in enumerate(counts)]


class Source:
    """Reads for the pages; ``mask`` is applied to each record before it is shown."""

    def __init__(self, tasks: QueuedTasks, mask: Mask | None,
                 manager: BackgroundTaskManager | None) -> None:
        self.tasks = tasks
        self._mask = mask
        self.manager = manager

    def masked(self, record: TaskRecord) -> TaskRecord:
        return record if self._mask is None else self._mask(record)

    async def live_workers(self) -> list[WorkerInfo]:
        stale_after = self.tasks.resolve_settings().lease_seconds * 3
        now = time.time()
        return [w for w in await self.tasks.workers() if now - w.last_heartbeat <= stale_after]

    async def overview(self) -> Overview:
        """One read of the newest tasks feeds the chart and what each worker runs: reads by
        state scan the whole queue on some backends."""
        now = time.time()
        stats = await self.tasks.stats()
        recent = await self.tasks.list(limit=DASHBOARD_RECENT_SAMPLE)
        running = [r for r in recent if r.status is TaskStatus.RUNNING]
        workers = [LiveWorker(w, [self.masked(r) for r in running if r.worker_id == w.id])
                   for w in await self.live_workers()]
        counts = background = None
        if self.manager is not None:
            counts = self.manager.counts()
            records = sorted(self.manager.tasks.values(), key=lambda r: r.created_at,
                             reverse=True)
            background = [self.masked(r) for r in records[:DASHBOARD_PAGE_SIZE // 2]]
        return Overview(stats, workers, chart(recent, now),
                        len(recent) == DASHBOARD_RECENT_SAMPLE, counts, background or [])

    async def page(self, status: TaskStatus | None, name: str | None, offset: int) -> ListPage:
        if not name:
            records = await self.tasks.list(status, limit=DASHBOARD_PAGE_SIZE + 1,
                                            offset=offset)
            more = len(records) > DASHBOARD_PAGE_SIZE
            return ListPage([self.masked(r) for r in records[:DASHBOARD_PAGE_SIZE]],
                            offset + DASHBOARD_PAGE_SIZE if more else None, False)
        found: list[TaskRecord] = []
        position = offset
        chunk = DASHBOARD_PAGE_SIZE * 10
        while position - offset < DASHBOARD_NAME_SCAN_LIMIT:
            records = await self.tasks.list(status, limit=chunk, offset=position)
            for i, record in enumerate(records):
                if record.name == name:
                    found.append(self.masked(record))
                    if len(found) == DASHBOARD_PAGE_SIZE:
                        return ListPage(found, position + i + 1, False)
            if len(records) < chunk:
                return ListPage(found, None, False)
            position += chunk
        return ListPage(found, position, True)

    async def record(self, task_id: str) -> TaskRecord | None:
        record = await self.tasks.get(task_id)
        return None if record is None else self.masked(record)

    async def graph(self, record: TaskRecord) -> tuple[list[TaskRecord], list[TaskRecord]]:
        """The task's parents (the ones still stored) and its children, masked."""
        parents = []
        for parent_id in record.parents[:DASHBOARD_GRAPH_TASKS]:
            found = await self.record(parent_id)
            if found is not None:
                parents.append(found)
        children = await self.tasks.children(record.id, limit=DASHBOARD_GRAPH_TASKS)
        return parents, [self.masked(r) for r in children]

    def background_record(self, task_id: str) -> TaskRecord | None:
        if self.manager is None:
            return None
        record = self.manager.tasks.get(task_id)
        return None if record is None else self.masked(record)
