"""What a worker reports as it runs tasks: the hooks sink of ``Worker(..., hooks=...)``.

:class:`WorkerHooks` is the protocol. :class:`QueueHooks` is the queue's: it emits the
``task:*`` events on the app's event bus and wakes the ``TaskRef.wait`` calls of this
process. A worker given no hooks reports to :data:`NO_HOOKS`, which does nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import anyio

from ..types import TaskRecord

if TYPE_CHECKING:
    from ..events import EventBus

__all__ = ["NO_HOOKS", "NoHooks", "QueueHooks", "WorkerHooks"]

logger = logging.getLogger("qakeapi.queue")


class WorkerHooks(Protocol):
    """Called by a worker, on its event loop; an exception raised here is logged by the
    worker and changes nothing it stores."""

    async def on_started(self, record: TaskRecord) -> None:
        """An attempt of ``record`` starts."""

    async def on_finished(self, record: TaskRecord) -> None:
        """An attempt's outcome was stored. ``record.status`` is the task's new status:
        succeeded, failed or cancelled, or pending when it will be retried."""


class NoHooks:
    """Hooks that do nothing: a worker run by a script that needs no events."""

    __slots__ = ()

    async def on_started(self, record: TaskRecord) -> None:
        return None

    async def on_finished(self, record: TaskRecord) -> None:
        return None


NO_HOOKS = NoHooks()


class QueueHooks:
    """The queue's hooks: ``task:*`` events on ``bus`` (the app's, when it has one), the
    waiters of ``wait_finished`` and the observers added by :meth:`observe` (metrics,
    traces), which see every attempt with or without an app."""

    __slots__ = ("bus", "observers", "waiters")

    def __init__(self, bus: EventBus | None = None) -> None:
        self.bus = bus
        self.waiters: dict[str, anyio.Event] = {}
        self.observers: list[WorkerHooks] = []

    def observe(self, observer: WorkerHooks) -> None:
        """Report every attempt to ``observer`` too (once, however often it is added)."""
        if not any(existing is observer for existing in self.observers):
            self.observers.append(observer)

    async def _tell_observers(self, started: bool, record: TaskRecord) -> None:
        for observer in self.observers:
            try:
                if started:
                    await observer.on_started(record)
                else:
                    await observer.on_finished(record)
            except Exception:
                logger.exception("queue observer %r failed on task %s", observer, record.id)

    async def emit(self, name: str, record: TaskRecord) -> None:
        bus = self.bus
        if bus is not None and bus.has_listeners(name):
            await bus.emit(name, record)

    async def on_started(self, record: TaskRecord) -> None:
        if self.observers:
            await self._tell_observers(True, record)
        await self.emit("task:started", record)

    async def on_finished(self, record: TaskRecord) -> None:
        if self.observers:
            await self._tell_observers(False, record)
        if not record.is_terminal:
            await self.emit("task:retrying", record)
            return
        event = self.waiters.pop(record.id, None)
        if event is not None:
            event.set()
        await self.emit("task:" + record.status.value, record)

    async def wait_finished(self, task_id: str, timeout: float) -> None:
        """Return when this process learns that the task finished, or after ``timeout``."""
        event = self.waiters.get(task_id)
        if event is None:
            event = self.waiters[task_id] = anyio.Event()
        with anyio.move_on_after(timeout):
            await event.wait()
