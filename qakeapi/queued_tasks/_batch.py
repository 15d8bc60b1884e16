"""Batches of added tasks waiting to be stored together."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ..core._request_tasks import current_request_tasks
from ..exceptions import TaskCancelledError
from ..types import TaskRecord

if TYPE_CHECKING:
    from ._ref import TaskRef

__all__ = ["Batch", "RequestBatch"]

logger = logging.getLogger("qakeapi.queue")


class Batch:
    """Records added together, stored by one ``storage.enqueue`` call."""

    __slots__ = ("_done", "error", "records", "refs")

    def __init__(self) -> None:
        self.records: list[TaskRecord] = []
        self.refs: list[TaskRef] = []
        self.error: BaseException | None = None
        self._done: anyio.Event | None = None

    @property
    def done(self) -> bool:
        return self._done is not None and self._done.is_set()

    def settle(self, stored: list[TaskRecord] | None, error: BaseException | None) -> None:
        if stored is not None:
            for ref, record in zip(self.refs, stored, strict=False):
                ref.id = record.id
        self.error = error
        if self._done is None:
            self._done = anyio.Event()
        self._done.set()

    async def wait_stored(self) -> None:
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()
        if self.error is not None:
            raise self.error


class RequestBatch(Batch):
    """The tasks one request added: stored before its response starts, or dropped.

    Awaiting one of its refs inside the request (``status``, ``wait``, ``cancel``...) stores
    the batch at once instead of waiting for the response; tasks the request adds after
    that form a new batch."""

    __slots__ = ("holder", "key", "store", "storing")

    def __init__(self, key: object, store: Callable[[Batch], Awaitable[None]]) -> None:
        """``key``: the queue's key among the request's participants; ``store``: stores a
        batch (and settles it)."""
        super().__init__()
        self.key = key
        self.store = store
        self.holder = current_request_tasks.get()
        self.storing = False

    async def flush(self) -> None:
        if self.records and not self.storing and not self.done:
            self.storing = True
            await self.store(self)

    async def wait_stored(self) -> None:
        holder = self.holder
        if not self.storing and holder is not None and holder.open and holder.holds_queued:
            holder.detach(self.key)
            await self.flush()
        await super().wait_stored()

    def release(self) -> None:
        return None

    def drop(self, reason: str) -> None:
        if self.records and not self.storing and not self.done:
            logger.warning("%d queued task(s) not stored: %s", len(self.records), reason)
            self.settle(None, TaskCancelledError(f"not queued: {reason}"))
