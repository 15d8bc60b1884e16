"""``TaskRef``: what ``add_task`` returns — the task's id and awaitable accessors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ..core._background_ref import raise_unless_succeeded
from ..exceptions import TaskNotFound, TaskWaitTimeout
from ..types import TaskRecord, TaskStatus
from ._serialization import decode

if TYPE_CHECKING:
    from ._batch import Batch
    from ._queue import QueuedTasks

__all__ = ["TaskRef"]

_POLL_START = 0.01
_POLL_MAX = 0.5


class TaskRef:
    """A queued task. ``id`` is known at once; the methods wait until it is stored.

    With ``unique_key``, ``id`` becomes the existing task's id once stored."""

    __slots__ = ("_batch", "_queue", "id")

    def __init__(self, queue: QueuedTasks, task_id: str, batch: Batch | None = None) -> None:
        self._queue = queue
        self._batch = batch
        self.id = task_id

    def __repr__(self) -> str:
        return f"TaskRef({self.id!r})"

    @property
    def store_error(self) -> BaseException | None:
        """Why the task was never stored, once storing it failed (else None)."""
        return None if self._batch is None else self._batch.error

    async def stored(self) -> None:
        """Wait until the task is stored; raises the storage error if storing failed."""
        if self._batch is not None:
            await self._batch.wait_stored()

    async def record(self) -> TaskRecord:
        await self.stored()
        found = await self._queue.get(self.id)
        if found is None:
            raise TaskNotFound(self.id)
        return found

    async def status(self) -> TaskStatus:
        return (await self.record()).status

    async def wait(self, timeout: float | None = None) -> TaskRecord:
        """The record once the task is finished (succeeded, failed or cancelled)."""
        with anyio.move_on_after(timeout):
            await self.stored()
            interval = _POLL_START
            while True:
                found = await self.record()
                if found.is_terminal:
                    return found
                await self._queue.hooks.wait_finished(self.id, interval)
                interval = min(_POLL_MAX, interval * 2)
        raise TaskWaitTimeout(f"task {self.id} did not finish within {timeout} s")

    async def result(self, timeout: float | None = None) -> Any:
        """The task's return value; TaskFailedError / TaskCancelledError otherwise."""
        found = await self.wait(timeout)
        raise_unless_succeeded(found)
        return decode(found.result)

    async def cancel(self, reason: str = "cancelled") -> TaskRecord:
        await self.stored()
        return await self._queue.cancel(self.id, reason)
