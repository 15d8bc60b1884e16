"""``BackgroundTaskRef``: the id ``add_background_task`` returns, with ``TaskRef``'s methods.

It *is* the id (a ``str``: ``manager.tasks[ref]``, JSON, logs and comparisons see the plain
id) and also answers ``await ref.status()``, ``ref.wait()``, ``ref.result()`` and
``ref.cancel()`` as a queued task's :class:`~qakeapi.queued_tasks.TaskRef` does, so code that
reads a task's outcome is the same for both kinds of task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..exceptions import TaskCancelledError, TaskFailedError, TaskNotFound
from ..types import TaskRecord, TaskStatus

__all__ = ["BackgroundTaskRef", "TaskSource", "raise_unless_succeeded", "set_task_source"]


class TaskSource(Protocol):
    """What a :class:`BackgroundTaskRef` reads through: the process's background task
    manager (which registers itself with :func:`set_task_source`)."""

    @property
    def tasks(self) -> Mapping[str, TaskRecord]: ...

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord: ...

    async def cancel(self, task_id: str, reason: str = "cancelled") -> TaskRecord: ...


class _Source:
    current: TaskSource | None = None


def set_task_source(source: TaskSource | None) -> None:
    """Make ``source`` the manager every :class:`BackgroundTaskRef` reads (None: none)."""
    _Source.current = source


def raise_unless_succeeded(record: TaskRecord) -> None:
    """For a finished task: ``TaskFailedError`` or ``TaskCancelledError`` unless it
    succeeded (what ``result()`` of either kind of task raises)."""
    if record.status is TaskStatus.SUCCEEDED:
        return
    if record.status is TaskStatus.FAILED:
        error = record.error
        detail = f"{error.type}: {error.message}" if error else "failed"
        raise TaskFailedError(f"task {record.id} failed: {detail}", record)
    raise TaskCancelledError(f"task {record.id} was cancelled: {record.cancel_reason}", record)


class BackgroundTaskRef(str):
    """A background task's id, with the read methods of a queued task's ``TaskRef``."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return str(self)

    async def stored(self) -> None:
        """For parity with ``TaskRef``: a background task is recorded when it is added."""

    def _source(self) -> TaskSource:
        source = _Source.current
        if source is None:  # the manager that added it was reset: its records are gone
            raise TaskNotFound(str(self))
        return source

    async def record(self) -> TaskRecord:
        """The task's record (``TaskNotFound`` once retention has dropped it)."""
        return self._source().tasks[self]

    async def status(self) -> TaskStatus:
        return self._source().tasks[self].status

    async def wait(self, timeout: float | None = None) -> TaskRecord:
        """The record once the task has finished; ``TaskWaitTimeout`` after ``timeout``."""
        return await self._source().wait(self, timeout)

    async def result(self, timeout: float | None = None) -> Any:
        """The task's return value; ``TaskFailedError`` / ``TaskCancelledError`` otherwise."""
        found = await self.wait(timeout)
        raise_unless_succeeded(found)
        return found.result

    async def cancel(self, reason: str = "cancelled") -> TaskRecord:
        return await self._source().cancel(self, reason)
