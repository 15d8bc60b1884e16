"""``BackgroundTaskRef``: the id ``add_background_task`` returns, with ``TaskRef``'s methods.

It *is* the id (a ``str``: ``manager.tasks[ref]``, JSON, logs and comparisons see the plain
id) and also answers ``await ref.status()``, ``ref.wait()``, ``ref.result()`` and
``ref.cancel()`` as a queued task's :class:`~qakeapi.queued_tasks.TaskRef` does, so code that
reads a task's outcome is the same for both kinds of task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import TaskCancelledError, TaskFailedError
from ..types import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from .background import BackgroundTaskManager

__all__ = ["BackgroundTaskRef", "raise_unless_succeeded"]


def _manager() -> BackgroundTaskManager:
    from .background import BackgroundTaskManager

    return BackgroundTaskManager()


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

    async def record(self) -> TaskRecord:
        """The task's record (``TaskNotFound`` once retention has dropped it)."""
        return _manager().tasks[self]

    async def status(self) -> TaskStatus:
        return _manager().tasks[self].status

    async def wait(self, timeout: float | None = None) -> TaskRecord:
        """The record once the task has finished; ``TaskWaitTimeout`` after ``timeout``."""
        return await _manager().wait(self, timeout)

    async def result(self, timeout: float | None = None) -> Any:
        """The task's return value; ``TaskFailedError`` / ``TaskCancelledError`` otherwise."""
        found = await self.wait(timeout)
        raise_unless_succeeded(found)
        return found.result

    async def cancel(self, reason: str = "cancelled") -> TaskRecord:
        return await _manager().cancel(self, reason)
