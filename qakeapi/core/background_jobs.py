"""What the background task manager keeps per task: records, runners, function facts."""

from __future__ import annotations

import functools
import inspect
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from ..exceptions import TaskNotFound
from ..types import TaskRecord, TaskStatus
from .background_ref import BackgroundTaskRef

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


_PENDING = TaskStatus.PENDING


class Job(TaskRecord):
    """A background task's record plus what running it needs (one object per task)."""

    __slots__ = ("done", "fn", "is_async", "runner")
    id: BackgroundTaskRef

    def __init__(self, task_id: BackgroundTaskRef, name: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any], retries: int, timeout: float | None,
                 fn: Callable[..., Any], is_async: bool) -> None:
        # Plain stores instead of the dataclass __init__: this runs once per task.
        self.id = task_id
        self.name = name
        self.status = _PENDING
        self.args = args
        self.kwargs = kwargs
        self.attempts = 0
        self.max_retries = retries
        self.timeout = timeout
        self.priority = 0
        self.result = None
        self.error = None
        self.created_at = time.time()
        self.started_at = None
        self.finished_at = None
        self.run_at = None
        self.parents = ()
        self.context = {}
        self.logs = ()
        self.unique_key = None
        self.worker_id = None
        self.lease_expires_at = None
        self.cancel_reason = None
        self.cancel_requested = False
        self.auto_remove = False
        self.fn = fn
        self.is_async = is_async
        self.done: anyio.Event | None = None
        self.runner: Runner | None = None


class Runner:
    """One runner coroutine's cancel scope, shared by the jobs it runs one after another."""

    __slots__ = ("cancelled", "job", "scope")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.job: Job | None = None
        self.cancelled = False
        """Set with the scope's cancellation, so the hot loop reads an attribute."""

    def cancel(self) -> None:
        if self.scope is not None:
            self.cancelled = True
            self.scope.cancel()


def _describe(fn: Callable[..., Any]) -> tuple[str, bool]:
    """A task's name (``module:qualname``) and whether it is a coroutine function."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async callable objects
    )
    return (f"{module}:{name}" if module else name), is_async


DESCRIPTIONS: dict[Any, tuple[str, bool]] = {}
DESCRIPTIONS_MAX = 4096


def describe_cached(fn: Callable[..., Any]) -> tuple[str, bool]:
    try:
        return DESCRIPTIONS[fn]
    except KeyError:
        pass
    except TypeError:
        return _describe(fn)
    if len(DESCRIPTIONS) >= DESCRIPTIONS_MAX:
        DESCRIPTIONS.clear()
    found = DESCRIPTIONS[fn] = _describe(fn)
    return found
