"""What a QakeAPI app without middleware of its own does with an exception its routes raise.

Starlette answers it in two layers around the router: ``ExceptionMiddleware`` (a handler
registered for the exception's class or HTTP status) and ``ServerErrorMiddleware`` (any other
exception: a 500, then the exception goes on). Each layer wraps ``send`` to learn whether the
response has started, and costs every request a frame, a closure and a ``Request``.

A QakeAPI app's outer layer (:class:`~qakeapi.tasks_asgi.TaskMiddleware`) already watches the
response start, so when no middleware sits between it and the router, :class:`ErrorResponder`
answers there, with the same rules and the same handlers, and a request passes no extra layer.
With middleware added (CORS, GZip, ...) handlers must answer inside it, and the app keeps
Starlette's own stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .core._background_jobs import is_async_callable

__all__ = ["EXCEPTION_HANDLERS_SCOPE_KEY", "ErrorResponder"]

ExceptionHandler = Callable[[Request, Any], Any]
EXCEPTION_HANDLERS_SCOPE_KEY = "starlette.exception_handlers"
"""Where Starlette's routes (``request_response`` endpoints, in mounted routers too) look
for the app's handlers: the same ``(by class, by status)`` pair ExceptionMiddleware sets."""


class ErrorResponder:
    """The app's exception handlers (``{class or status: handler}``; the one for 500 or
    ``Exception`` answers server errors), applied as Starlette's two error layers apply
    them."""

    __slots__ = ("by_class", "by_status", "scope_value", "server_error")

    def __init__(self, handlers: Mapping[Any, ExceptionHandler]) -> None:
        self.by_class: dict[type[BaseException], ExceptionHandler] = {}
        self.by_status: dict[int, ExceptionHandler] = {}
        server_error: ExceptionHandler | None = None
        for key, handler in handlers.items():
            if key in (500, Exception):
                server_error = handler
                continue
            if isinstance(key, int):
                self.by_status[key] = handler
            else:
                self.by_class[key] = handler
        if server_error is None:
            raise ValueError("an ErrorResponder needs a handler for 500 or Exception")
        self.server_error = server_error
        self.scope_value = (self.by_class, self.by_status)
        """What :data:`EXCEPTION_HANDLERS_SCOPE_KEY` holds in every request's scope."""

    def handler_for(self, exc: Exception) -> ExceptionHandler | None:
        """The handler for ``exc``: by status for an ``HTTPException``, else by the nearest
        class in its MRO (None: a server error)."""
        if isinstance(exc, HTTPException):
            found = self.by_status.get(exc.status_code)
            if found is not None:
                return found
        for cls in type(exc).__mro__:
            found = self.by_class.get(cls)
            if found is not None:
                return found
        return None

    async def answer(self, scope: Scope, receive: Receive, send: Send, exc: Exception,
                     started: bool) -> Exception | None:
        """Answer ``exc``, raised by the routes: None when a handler answered it; else the
        exception that goes on to the server (``exc``, or what answering it raised) once a 500
        has been answered, if the response had not started."""
        error: Exception = exc
        handler = self.handler_for(exc)
        if handler is not None:
            try:
                if started:
                    raise RuntimeError(
                        "Caught handled exception, but response already started.") from exc
                await _respond(handler, scope, receive, send, exc)
            except Exception as raised:
                error = raised
            else:
                exc.__traceback__ = None  # a reused instance would collect tracebacks
                return None
        if not started:
            await _respond(self.server_error, scope, receive, send, error)
        return error


async def _respond(handler: ExceptionHandler, scope: Scope, receive: Receive, send: Send,
                   exc: Exception) -> None:
    request = Request(scope, receive, send)
    if is_async_callable(handler):
        response = await handler(request, exc)
    else:
        response = await anyio.to_thread.run_sync(handler, request, exc)
    if response is not None:
        await response(scope, receive, send)

