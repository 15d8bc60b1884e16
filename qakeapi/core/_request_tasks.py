"""Tasks added while one HTTP request is handled, held until the response allows them.

:class:`qakeapi.tasks_asgi.TaskMiddleware` (which every QakeAPI app runs outermost) sets a
fresh :class:`RequestTasks` in :data:`current_request_tasks` for every HTTP request and
drives it:

* ``await holder.flush()`` when the app sends ``http.response.start``, before that message
  goes on: queued tasks are written to their backend in one batch, so a response that says
  "queued" means stored (if storing fails the response is replaced by a 503). Queued tasks
  added after that point (while a streamed body is produced) are stored at once;
* ``holder.release()`` when the ASGI call ends, the response sent: held background tasks
  start on their manager's task group;
* ``holder.drop(reason)`` when the handler raised: nothing held is started or stored;
* ``await holder.run_inline()`` after ``release``, still inside the ASGI call: background
  tasks added while no manager ran (an app served without its lifespan) run there, one after
  the other, as Starlette runs its own background tasks.

Queued tasks join the request with :meth:`RequestTasks.participant`, once per queue; the
participant implements :class:`RequestParticipant`. Background tasks, the hot path, go into
one plain list (:attr:`RequestTasks.held`) that their manager starts or drops as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

__all__ = [
    "HeldTaskOwner",
    "RequestParticipant",
    "RequestTasks",
    "current_request_tasks",
]

logger = logging.getLogger("qakeapi.tasks")


class RequestParticipant(Protocol):
    async def flush(self) -> None:
        """Store what must be durable before the response starts (may raise)."""

    def release(self) -> None:
        """The response was sent: start what was held."""

    def drop(self, reason: str) -> None:
        """The handler raised: discard what was held, recording why."""


class HeldTaskOwner(Protocol):
    """What held background tasks belong to: it starts or drops them all at once (and
    counts the held tasks: :meth:`RequestTasks.hold` and a caller that fills
    :attr:`RequestTasks.held` itself leave that to it)."""

    def start_held(self, jobs: list[Any]) -> bool:
        """Start ``jobs``; True if the request should then let the owner's runners in."""

    def drop_held(self, jobs: list[Any], reason: str) -> None: ...


P = TypeVar("P", bound=RequestParticipant)


class RequestTasks:
    """The per-request holder. Cheap to create: nothing else is allocated until a task is
    added."""

    # Slots set in __init__, not class-level defaults: CPython 3.11 specializes an
    # attribute access (a few instructions) only when no class attribute of that name
    # exists, and a request reads and writes these a dozen times.
    __slots__ = ("_participants", "held", "held_owner", "holds_queued", "inline",
                 "must_flush", "open", "response_started", "yield_to_runners")

    def __init__(self) -> None:
        self._participants: dict[object, RequestParticipant] | None = None
        self.open = True
        """Neither released nor dropped: background tasks added now are held."""
        self.holds_queued = True
        """Not flushed yet: queued tasks added now are stored with the request's batch."""
        self.must_flush = False
        """A participant joined since the last flush (read on every request)."""
        self.response_started = False
        """``http.response.start`` has gone to the server (an error can't be answered)."""
        self.held: list[Any] | None = None
        """Background tasks held for :attr:`held_owner`."""
        self.held_owner: HeldTaskOwner | None = None
        self.yield_to_runners = False
        """Set by :meth:`release` when the owner of the held tasks asks the request to let
        its runners in (one checkpoint, after the response)."""
        self.inline: list[Callable[[], Awaitable[None]]] | None = None
        """Background tasks added while no manager ran: run by :meth:`run_inline`."""

    def hold(self, job: Any, owner: HeldTaskOwner) -> bool:
        """Hold ``job`` for ``owner`` until the response is sent (or the handler raises);
        False, with nothing held, if the request already holds tasks of another owner."""
        held = self.held
        if held is None:
            self.held = [job]
            self.held_owner = owner
        elif self.held_owner is owner:
            held.append(job)
        else:
            return False
        return True

    def run_after_response(self, call: Callable[[], Awaitable[None]]) -> None:
        """Run ``call`` once the response has been sent, inside the request's ASGI call."""
        if self.inline is None:
            self.inline = []
        self.inline.append(call)

    async def run_inline(self) -> None:
        """Run (in order) what :meth:`run_after_response` kept, unless the request failed."""
        calls, self.inline = self.inline, None
        for call in calls or ():
            try:
                await call()
            except Exception:
                logger.exception("a background task run after the response failed")

    def participant(self, key: object, factory: Callable[[], P]) -> P:
        """The participant registered under ``key``, created by ``factory`` on first use."""
        participants = self._participants
        if participants is None:
            participants = self._participants = {}
        found = participants.get(key)
        if found is None:
            found = participants[key] = factory()
            self.must_flush = True
        return found  # type: ignore[return-value]

    def detach(self, key: object) -> None:
        """Forget the participant under ``key`` (it stored its tasks early, on demand): the
        next task the request adds for ``key`` starts a new one."""
        if self._participants is not None:
            self._participants.pop(key, None)

    async def flush(self) -> None:
        """Store what the participants hold (raises what storing raised)."""
        self.must_flush = False
        self.holds_queued = False
        if self._participants and self.open:
            for part in list(self._participants.values()):
                await part.flush()

    def release(self) -> None:
        """The response has been sent: start what is held (idempotent)."""
        if not self.open:
            return
        self.open = self.holds_queued = False
        if self.held is not None and self.held_owner is not None:
            try:
                if self.held_owner.start_held(self.held):
                    self.yield_to_runners = True
            except Exception:
                logger.exception("starting held background tasks failed")
        if self._participants:
            for part in self._participants.values():
                try:
                    part.release()
                except Exception:
                    logger.exception("starting held tasks failed")

    def drop(self, reason: str) -> None:
        """The handler raised: record what is held as not started (idempotent)."""
        if not self.open:
            return
        self.open = self.holds_queued = False
        if self.inline:
            logger.warning("%d background task(s) not run: %s", len(self.inline), reason)
            self.inline = None
        if self.held is not None and self.held_owner is not None:
            try:
                self.held_owner.drop_held(self.held, reason)
            except Exception:
                logger.exception("dropping held background tasks failed")
        if self._participants:
            for part in self._participants.values():
                try:
                    part.drop(reason)
                except Exception:
                    logger.exception("dropping held tasks failed")


current_request_tasks: ContextVar[RequestTasks | None] = ContextVar(
    "qakeapi_request_tasks", default=None
)
