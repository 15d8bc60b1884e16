"""What the pages show, read through the public ``QueuedTasks`` API (and the process's
``BackgroundTaskManager``), with the ``mask`` hook applied to every record."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..constants import (
    DASHBOARD_CHART_BUCKETS,
    DASHBOARD_GRAPH_TASKS,
    DASHBOARD_PAGE_SIZE,
    DASHBOARD_RECENT_SAMPLE,
)
from ..core.background import BackgroundTaskManager
from ..queued_tasks import QueuedTasks
from ..types import QueueStats, TaskPage, TaskRecord, TaskStatus, WorkerInfo

__all__ = ["ChartBucket", "Mask", "Overview", "Source"]

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

    def alive(self, workers: list[WorkerInfo]) -> list[WorkerInfo]:
        """The workers whose last heartbeat is recent enough, now."""
        stale_after = self.tasks.resolve_settings().worker_stale_seconds
        now = time.time()
        return [w for w in workers if now - w.last_heartbeat <= stale_after]

    async def live_workers(self) -> list[WorkerInfo]:
        return self.alive(await self.tasks.workers())

    async def overview(self) -> Overview:
        """The counts (kept by the storage), the newest tasks for the chart and the running
        ones for the workers: each a read of a page through an index, on a queue of any
        size."""
        now = time.time()
        stats = await self.tasks.stats()
        recent = (await self.tasks.page(limit=DASHBOARD_RECENT_SAMPLE)).records
        running = (await self.tasks.page(status=TaskStatus.RUNNING,
                                         limit=DASHBOARD_RECENT_SAMPLE)).records
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

    async def page(self, status: TaskStatus | None, name: str | None,
                   cursor: str | None) -> TaskPage:
        """A page of the task list from ``cursor`` (InvalidCursor if it is not one of this
        list's). A "newer" page that reaches the top is shown as the full first page."""
        found = await self.tasks.page(status=status, name=name, limit=DASHBOARD_PAGE_SIZE,
                                      cursor=cursor)
        if cursor is not None and found.newer is None:
            found = await self.tasks.page(status=status, name=name, limit=DASHBOARD_PAGE_SIZE)
        return TaskPage([self.masked(r) for r in found.records], found.older, found.newer)

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
