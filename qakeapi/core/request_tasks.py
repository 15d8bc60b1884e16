"""Tasks added while one HTTP request is handled, held until the response allows them.

The app sets a fresh :class:`RequestTasks` in :data:`current_request_tasks` for every HTTP
request (outside any middleware) and drives it:

* ``await holder.flush()`` just before ``http.response.start`` is sent: queued tasks are
  written to their backend in one batch, so a response that says "queued" means stored;
* ``holder.release()`` once the last body chunk is sent (and again, idempotently, when the
  ASGI call ends): held background tasks start;
* ``holder.drop(reason)`` when the handler raised: nothing held is started or stored.

Code that adds tasks joins the request with :meth:`RequestTasks.participant`, once per
(manager, queue) key; the participant implements :class:`RequestParticipant`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol, TypeVar

__all__ = ["RequestParticipant", "RequestTasks", "current_request_tasks"]

logger = logging.getLogger("qakeapi.tasks")


class RequestParticipant(Protocol):
    async def flush(self) -> None:
        """Store what must be durable before the response starts (may raise)."""

    def release(self) -> None:
        """The response was sent: start what was held."""

    def drop(self, reason: str) -> None:
        """The handler raised: discard what was held, recording why."""


P = TypeVar("P", bound=RequestParticipant)


class RequestTasks:
    """The per-request holder. Cheap to create: nothing is allocated until a task is added."""

    __slots__ = ("_participants", "_state")

    def __init__(self) -> None:
        self._participants: dict[object, RequestParticipant] | None = None
        self._state = 0  # 0 open, 1 released, 2 dropped

    @property
    def released(self) -> bool:
        return self._state == 1

    @property
    def dropped(self) -> bool:
        return self._state == 2

    @property
    def has_participants(self) -> bool:
        return bool(self._participants)

    @property
    def open(self) -> bool:
        return self._state == 0

    def participant(self, key: object, factory: Callable[[], P]) -> P:
        """The participant registered under ``key``, created by ``factory`` on first use."""
        participants = self._participants
        if participants is None:
            found: RequestParticipant = factory()
            self._participants = {key: found}
            return found  # type: ignore[return-value]
        found_or_none = participants.get(key)
        if found_or_none is None:
            found_or_none = participants[key] = factory()
        return found_or_none  # type: ignore[return-value]

    async def flush(self) -> None:
        if self._participants and self._state == 0:
            for part in list(self._participants.values()):
                await part.flush()

    def release(self) -> None:
        if self._state != 0:
            return
        self._state = 1
        if self._participants:
            for part in self._participants.values():
                try:
                    part.release()
                except Exception:
                    logger.exception("starting held tasks failed")

    def drop(self, reason: str) -> None:
        if self._state != 0:
            return
        self._state = 2
        if self._participants:
            for part in self._participants.values():
                try:
                    part.drop(reason)
                except Exception:
                    logger.exception("dropping held tasks failed")


current_request_tasks: ContextVar[RequestTasks | None] = ContextVar(
    "qakeapi_request_tasks", default=None
)
