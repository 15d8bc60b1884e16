"""Request body limits for any ASGI app: a size cap (413) and a read deadline (408).

:class:`RequestLimits` wraps an ASGI app (``QakeAPI`` uses it; a Starlette or FastAPI app adds
it as ``Middleware(RequestLimits, max_body_size=...)``):

* a request whose ``Content-Length`` is over ``max_body_size`` is answered 413 at once,
  before the app runs and before any of the body is read;
* otherwise body bytes are counted as the app reads them (chunked bodies included), and the
  read that goes past the limit raises :class:`RequestBodyError` (413);
* a body whose last byte has not arrived ``body_timeout`` seconds after the app first asked
  for it raises :class:`RequestBodyError` (408): uvicorn has no such timeout, and a client
  sending half a body would otherwise hold its request open for ever.

Both errors close the connection, so the unread rest of a body is never read. The error is
an ``HTTPException``: the app's exception handling answers it; if nothing does, this
middleware answers it, provided the response has not started.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .constants import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    ENV_BODY_TIMEOUT,
    ENV_MAX_BODY_SIZE,
)
from .exceptions import HTTPException
from .responses import JSONResponse

__all__ = [
    "RequestBodyError",
    "RequestLimits",
    "check_size",
    "check_timeout",
    "resolve_limits",
    "setting_from_env",
]

_HTTP1 = frozenset({"1.0", "1.1"})


class RequestBodyError(HTTPException):
    """413 (body too large) or 408 (body too slow); the response closes the connection."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail, headers={"connection": "close"})


def check_size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (bytes; 0 = no limit), got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative (0 = no limit), got {value!r}")
    return value


def check_timeout(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds (0 = none), got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def setting_from_env(env: Mapping[str, str], name: str, parse: Callable[[str], Any],
                     kind: str, default: Any) -> Any:
    """``parse(env[name])``, or ``default`` when unset; ValueError naming the variable."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind}") from None


def resolve_limits(
    max_body_size: int | None, body_timeout: float | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[int, float]:
    """The limits to use: the arguments, else the environment variables, else the defaults.
    Raises TypeError/ValueError naming the argument or variable that can't be used."""
    env = os.environ if environ is None else environ
    if max_body_size is None:
        max_body_size = check_size(
            setting_from_env(env, ENV_MAX_BODY_SIZE, int, "int", DEFAULT_MAX_BODY_SIZE),
            ENV_MAX_BODY_SIZE)
    if body_timeout is None:
        body_timeout = check_timeout(
            setting_from_env(env, ENV_BODY_TIMEOUT, float, "number", DEFAULT_BODY_TIMEOUT),
            ENV_BODY_TIMEOUT)
    return check_size(max_body_size, "max_body_size"), check_timeout(body_timeout,
                                                                        "body_timeout")


class _LimitedBody:
    """The wrapped ``receive`` (and ``send``) of one request with a body."""

    __slots__ = ("deadline", "done", "error", "limit", "receive", "received", "send",
                 "started", "timeout")

    def __init__(self, receive: Receive, send: Send, limit: int, timeout: float) -> None:
        self.receive = receive
        self.send = send
        self.limit = limit
        self.timeout = timeout
        self.received = 0
        self.deadline: float | None = None
        self.done = False
        self.started = False
        self.error: RequestBodyError | None = None

    async def read(self) -> Message:
        if self.done:
            return await self.receive()
        if self.error is not None:
            raise self.error
        if self.timeout:
            if self.deadline is None:
                self.deadline = anyio.current_time() + self.timeout
            with anyio.CancelScope(deadline=self.deadline) as scope:
                message = await self.receive()
            if scope.cancelled_caught:
                self.error = RequestBodyError(
                    408, f"request body not received within {self.timeout:g} s")
                raise self.error
        else:
            message = await self.receive()
        if message["type"] != "http.request":
            self.done = True
            return message
        self.received += len(message.get("body", b""))
        if self.limit and self.received > self.limit:
            self.error = RequestBodyError(
                413, f"request body too large: the limit is {self.limit} bytes")
            raise self.error
        if not message.get("more_body", False):
            self.done = True
        return message

    async def write(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class RequestLimits:
    """ASGI middleware limiting request bodies: ``RequestLimits(app, max_body_size=...)``.

    ``max_body_size`` (bytes, 0 = no limit) and ``body_timeout`` (seconds, 0 = none) default
    to ``QAKEAPI_MAX_BODY_SIZE`` / ``QAKEAPI_BODY_TIMEOUT``, else 1 MiB and 30 s."""

    __slots__ = ("app", "body_timeout", "max_body_size")

    def __init__(self, app: ASGIApp, max_body_size: int | None = None,
                 body_timeout: float | None = None) -> None:
        self.app = app
        self.max_body_size, self.body_timeout = resolve_limits(max_body_size, body_timeout)

    def screen(self, scope: Scope) -> RequestBodyError | bool:
        """What an HTTP request needs, from its headers alone: the error to answer (a bad or
        too large ``Content-Length``), True when its body must be read through the limits,
        False when it has no body to guard (the app can be called directly)."""
        declared: bytes | None = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                has_body = True
        if declared is not None:
            if declared == b"0":
                return has_body and bool(self.max_body_size or self.body_timeout)
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                return RequestBodyError(400, "invalid Content-Length header")
            if self.max_body_size and size > self.max_body_size:
                return RequestBodyError(
                    413, f"request body too large: {size} bytes declared, the limit is "
                         f"{self.max_body_size} bytes")
            has_body = has_body or size > 0
        elif scope.get("http_version", "1.1") not in _HTTP1:
            has_body = True  # HTTP/2 and 3 send a body without either header
        return has_body and bool(self.max_body_size or self.body_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needs = self.screen(scope)
        if needs is False:
            await self.app(scope, receive, send)
        elif needs is True:
            await self.guard(scope, receive, send)
        else:
            await self.refuse(scope, receive, send, needs)

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app with the body read through the limits (a request :meth:`screen`
        found True for); a limit hit before the response started is answered here."""
        body = _LimitedBody(receive, send, self.max_body_size, self.body_timeout)
        try:
            await self.app(scope, body.read, body.write)
        except RequestBodyError as exc:
            if body.started or exc is not body.error:
                raise
            await self.refuse(scope, receive, send, exc)

    @staticmethod
    async def refuse(scope: Scope, receive: Receive, send: Send,
                     error: RequestBodyError) -> None:
        """Answer ``error`` (from :meth:`screen` or the body read) without the app."""
        response = JSONResponse({"detail": error.detail}, status_code=error.status_code,
                                headers=error.headers)
        await response(scope, receive, send)
