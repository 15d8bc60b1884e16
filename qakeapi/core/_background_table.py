"""``manager.tasks``: background task records by id, finished ones kept up to a count and an
age."""

from __future__ import annotations

from collections import deque

from ..exceptions import TaskNotFound
from ..types import TaskRecord, TaskStatus

__all__ = ["TaskTable"]


class TaskTable(dict[str, TaskRecord]):
    """``manager.tasks``: records by id; a missing id raises :class:`TaskNotFound`.

    Finished records are kept up to a count and an age (oldest finished first); pending and
    running ones are never evicted, since only :meth:`finished` makes a record evictable."""

    def __init__(self, retain_count: int, retain_seconds: float) -> None:
        super().__init__()
        self.retain_count = retain_count
        self.retain_seconds = retain_seconds
        self.finished_ids: deque[str] = deque()
        """Ids of the finished records kept, oldest first (the runners' hot loop appends to
        it and evicts by count itself, as :meth:`finished` does)."""
        self.next_age_check = 0.0
        """When :meth:`check_age` is due next (at most once a second)."""

    def __missing__(self, task_id: str) -> TaskRecord:
        raise TaskNotFound(task_id)

    def finished(self, task_id: str, now: float) -> None:
        """The task has finished at ``now``: keep its record while retention allows."""
        finished = self.finished_ids
        finished.append(task_id)
        if len(finished) > self.retain_count:
            self.pop(finished.popleft(), None)
        if now >= self.next_age_check:
            self.check_age(now)

    def check_age(self, now: float) -> None:
        """Evict the finished records older than ``retain_seconds`` (and any over the
        count); the next check is due a second later."""
        self.next_age_check = now + 1.0
        finished = self.finished_ids
        oldest_kept = now - self.retain_seconds
        while finished:
            record = self.get(finished[0])
            if len(finished) <= self.retain_count and record is not None and (
                record.finished_at is None or record.finished_at >= oldest_kept
            ):
                return
            self.pop(finished.popleft(), None)

    def counts(self) -> dict[TaskStatus, int]:
        result = dict.fromkeys(TaskStatus, 0)
        for record in self.values():
            result[record.status] += 1
        return result
