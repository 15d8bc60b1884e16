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
        self._finished: deque[str] = deque()
        self._age_checked_at = 0.0

    def __missing__(self, task_id: str) -> TaskRecord:
        raise TaskNotFound(task_id)

    def finished(self, task_id: str, now: float) -> None:
        """The task has finished at ``now``: keep its record while retention allows."""
        finished = self._finished
        finished.append(task_id)
        if len(finished) > self.retain_count:
            self.pop(finished.popleft(), None)
        if now - self._age_checked_at >= 1.0:
            self._age_checked_at = now
            self._evict(now)

    def _evict(self, now: float) -> None:
        finished = self._finished
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
