"""The request protocol of the task systems, for any ASGI app (QakeAPI, Starlette, FastAPI).

:class:`TaskMiddleware` gives every HTTP request a :class:`~qakeapi.core._request_tasks.
RequestTasks` holder and drives it:

* queued tasks the request added are stored when the app sends ``http.response.start``,
  before that message goes on to the server; if storing fails the response becomes a 503;
* background tasks the request added start once the app has returned, its response sent;
* both are dropped when the app raises (a handler error that becomes a 500).

:func:`tasks_lifespan` starts and stops the process's :class:`BackgroundTaskManager` and a
:class:`QueuedTasks` around an app's lifespan. FastAPI handlers take the queue through
:func:`queued_tasks_dependency`, which also drops the request's tasks when the handler
raises an ``HTTPException`` that an exception handler turns into a response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import anyio.lowlevel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core._request_tasks import RequestTasks, current_request_tasks
from .core.background import BackgroundTaskManager
from .queued_tasks import QueuedTasks

if TYPE_CHECKING:
    from .app import QakeAPI
    from .events import EventBus

__all__ = ["TaskMiddleware", "queued_tasks_dependency", "tasks_lifespan"]

logger = logging.getLogger("qakeapi.tasks")


async def _store_queued(holder: RequestTasks, scope: Scope) -> Exception | None:
    """Store the request's queued tasks; if that fails, log it, drop what the request holds
    and return the error (the response is then a 503)."""
    try:
        await holder.flush()
    except Exception as exc:
        logger.exception("could not store the tasks queued by %s", scope.get("path"))
        holder.drop(f"storing queued tasks failed: {exc}")
        return exc
    return None


def _response_gate(holder: RequestTasks, scope: Scope, send: Send) -> Send:
    """The ``send`` the app sees: stores queued tasks before the response starts, and
    replaces the response by a 503 when that fails. A plain function that returns the
    server's awaitable: it runs for every message, and a coroutine per message would cost
    a frame more."""
    replaced = False

    def gate(message: Message) -> Awaitable[None]:
        if replaced:
            return _ignored()
        if message["type"] == "http.response.start":
            holder.response_started = True
            if holder.must_flush:

                async def start_after_storing() -> None:
                    nonlocal replaced
                    failure = await _store_queued(holder, scope)
                    if failure is None:
                        await send(message)
                    else:
                        replaced = True
                        await _unavailable(send, failure)

                return start_after_storing()
            holder.holds_queued = False
        return send(message)

    return gate


async def _ignored() -> None:
    """What the gate answers to messages of a response it replaced."""


async def _unavailable(send: Send, failure: Exception) -> None:
    body = json.dumps({"detail": f"could not queue tasks: {failure}"}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})


class TaskMiddleware:
    """Plain ASGI middleware: ``app.add_middleware(TaskMiddleware)`` (Starlette, FastAPI).

    Outermost is best: tasks added by middleware inside it follow the request too.
    ``QakeAPI`` is one (a subclass around its Starlette app), so its requests pass one
    layer; ``app`` may be any callable that returns an awaitable."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def _answer_error(self, scope: Scope, receive: Receive, send: Send,
                            exc: BaseException, started: bool) -> bool:
        """Whether ``exc``, raised by the app, is (or was already) logged and answered with
        an error response, so that it must not reach the server (subclasses decide; ``send``
        goes to the server, ``started``: whether the response has started)."""
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder = RequestTasks()
        token = current_request_tasks.set(holder)
        gate = _response_gate(holder, scope, send)
        try:
            await self.app(scope, receive, gate)
            if holder.must_flush:
                # Queued after the response ended without ever starting: stored now.
                await _store_queued(holder, scope)
        except BaseException as exc:
            holder.drop(f"the request failed: {type(exc).__name__}: {exc}")
            if not await self._answer_error(scope, receive, gate, exc, holder.response_started):
                raise
        finally:
            holder.release()
            current_request_tasks.reset(token)
        if holder.yield_to_runners:
            # The response has been sent: let the background runners drain the queue that
            # requests have filled without ever waiting.
            await anyio.lowlevel.checkpoint()
        if holder.inline:
            await holder.run_inline()


@asynccontextmanager
async def tasks_lifespan(
    queue: QueuedTasks | None = None,
    *,
    events: EventBus | None = None,
    app: QakeAPI | None = None,
    startup: Callable[[], Awaitable[None]] | None = None,
    shutdown: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[QueuedTasks | None]:
    """Run the background task manager and ``queue`` (if given) for an app's lifespan.

    In order: the manager starts, then ``startup`` runs, then the queue starts; on exit the
    queue stops, ``shutdown`` runs, and the manager drains and stops."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(BackgroundTaskManager().lifespan(events=events))
        if startup is not None:
            await startup()
        if shutdown is not None:
            stack.push_async_callback(shutdown)
        if queue is not None:
            await stack.enter_async_context(queue.lifespan(app=app))
        yield queue


def queued_tasks_dependency(
    queue: QueuedTasks,
) -> Callable[[], AsyncIterator[QueuedTasks]]:
    """A FastAPI dependency yielding ``queue``: ``Depends(queued_tasks_dependency(queue))``.

    When the handler raises (``HTTPException`` included) the request's tasks are dropped."""

    async def dependency() -> AsyncIterator[QueuedTasks]:
        holder = current_request_tasks.get()
        try:
            yield queue
        except BaseException as exc:
            if holder is not None:
                holder.drop(f"the handler raised {type(exc).__name__}: {exc}")
            raise

    return dependency
