"""Rate limits per route and per client, counted where the queue lives.

``RateLimit("10/minute")`` allows ten requests per client per minute; the eleventh in the same
window is answered ``429 Too Many Requests`` with ``Retry-After`` and ``RateLimit-*``
headers. Use one as a route decorator (``@rate_limit("5/second")`` under ``@app.get``) or
list several in :class:`RateLimitMiddleware`, which also serves Starlette and FastAPI apps.

The counters live in the storage a URL names, the same URLs as ``QUEUE_URL``:
``memory://`` (this process), ``sqlite:///tasks.db`` (every process on the machine),
``redis://host:6379/0`` (every machine). Without a URL a limit uses its QakeAPI app's queue
URL, else ``QUEUE_URL``, else memory. See docs/rate-limiting.md.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
import os
import re
import typing
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import HTTPConnection
from starlette.requests import Request as _StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._ratelimit_storage import (
    Counters,
    MemoryCounters,
    Window,
    close_shared,
    scheme_of,
    shared_counters,
)
from .constants import (
    DEFAULT_QUEUE_URL,
    ENV_QUEUE_URL,
    RATELIMIT_MAX_AMOUNT,
    RATELIMIT_MAX_KEY_CHARS,
    RATELIMIT_MAX_PERIOD,
    ROUTED_HANDLER_MARK,
)
from .exceptions import BackendUnavailable, HTTPException
from .responses import JSONResponse
from .routing import APP_SCOPE_KEY

__all__ = [
    "Rate",
    "RateLimit",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "client_ip",
    "close_storages",
    "parse_rate",
    "rate_limit",
]

logger = logging.getLogger("qakeapi.ratelimit")
F = TypeVar("F", bound=Callable[..., Any])
KeyFunc = Callable[[HTTPConnection], "str | None"]
"""Who a request counts for; ``None`` exempts the request from the limit."""

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|\s+per\s+)\s*(?:(\d+)\s*)?(second|minute|hour|day)s?\s*",
                   re.IGNORECASE)
_REQUEST_PARAM = "qakeapi_ratelimit_request"


@dataclass(frozen=True, slots=True)
class Rate:
    """``amount`` requests per ``period`` seconds."""

    amount: int
    period: float

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"a rate's amount must be an int, got {self.amount!r}")
        if not 1 <= self.amount <= RATELIMIT_MAX_AMOUNT:
            raise ValueError(f"a rate's amount must be 1 to {RATELIMIT_MAX_AMOUNT}, got "
                             f"{self.amount!r} (to refuse a route, don't route it)")
        if isinstance(self.period, bool) or not isinstance(self.period, (int, float)):
            raise TypeError(f"a rate's period must be a number of seconds, got {self.period!r}")
        if not (math.isfinite(self.period) and 0 < self.period <= RATELIMIT_MAX_PERIOD):
            raise ValueError(f"a rate's period must be a finite number of seconds in "
                             f"(0, {RATELIMIT_MAX_PERIOD:g}], got {self.period!r}")

    def __str__(self) -> str:
        return f"{self.amount} per {self.period:g} s"


def parse_rate(rate: str | Rate) -> Rate:
    """``"10/minute"``, ``"10 per minute"``, ``"100/5 minutes"`` (units: second, minute,
    hour, day) as a :class:`Rate`; ValueError for anything else (``"0/minute"``, ``"nan/s"``,
    negative amounts, unknown units)."""
    if isinstance(rate, Rate):
        return rate
    if not isinstance(rate, str):
        raise TypeError(f"a rate must be a str like '10/minute' or a Rate, got {rate!r}")
    match = _RATE.fullmatch(rate)
    if match is None:
        raise ValueError(f"rate {rate!r} is not like '10/minute' or '100/5 minutes' "
                         f"(units: second, minute, hour, day)")
    amount, count, unit = match.groups()
    return Rate(int(amount), int(count or 1) * _UNITS[unit.lower()])


def client_ip(connection: HTTPConnection) -> str:
    """The client's address as the server saw it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so that it is the real client's)."""
    client = connection.client
    return client.host if client is not None else "unknown"


class RateLimitExceeded(HTTPException):
    """429 Too Many Requests, with ``Retry-After`` and ``RateLimit-*`` headers."""

    def __init__(self, rate: Rate, headers: dict[str, str]) -> None:
        super().__init__(429, f"rate limit exceeded: {rate}", headers=headers)


def _client_part(who: str) -> str:
    if len(who) > RATELIMIT_MAX_KEY_CHARS:
        return "sha256:" + hashlib.sha256(who.encode("utf-8", "surrogatepass")).hexdigest()
    return who


@functools.lru_cache(maxsize=64)
def _is_memory(url: str) -> bool:
    return scheme_of(url) == "memory"


def _default_url(scope: Scope) -> str:
    app = scope.get(APP_SCOPE_KEY)
    if app is not None:
        return str(app.queued_tasks.settings.url)
    return os.environ.get(ENV_QUEUE_URL) or DEFAULT_QUEUE_URL


_closing_apps: weakref.WeakSet[Any] = weakref.WeakSet()


class RateLimit:
    """One limit: ``rate`` per client (``key``), counted in the storage ``url`` names.

    ``path`` (a path and everything under it) and ``methods`` choose the requests a limit
    applies to inside :class:`RateLimitMiddleware`; ``scope`` names its counters (by default
    the decorated handler, or the path and methods), so limits with the same scope share
    them. ``fail_open=True`` lets requests through (logged) when the storage is down; by
    default they are answered 503."""

    def __init__(self, rate: str | Rate, *, key: KeyFunc = client_ip, url: str | None = None,
                 path: str | None = None, methods: Iterable[str] | None = None,
                 scope: str | None = None, fail_open: bool = False) -> None:
        self.rate = parse_rate(rate)
        if not callable(key):
            raise TypeError(f"key must be a callable taking the request, got {key!r}")
        self.key = key
        if url is not None:
            scheme_of(url)  # a bad URL fails here, not at the first request
        self.url = url
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise ValueError(f"a limit's path must start with '/', got {path!r}")
        self.path = path
        self._prefix = None if path is None else path.rstrip("/")
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        self._named = scope is not None
        self.scope = scope or f"{path or '*'}:{','.join(sorted(self.methods or ['*']))}"
        self.fail_open = fail_open
        self._memory = MemoryCounters()

    @property
    def scope(self) -> str:
        """The name of this limit's counters (with the rate, the first part of their keys)."""
        return self._scope

    @scope.setter
    def scope(self, value: str) -> None:
        self._scope = value
        self._key_prefix = f"{value}|{self.rate.amount}/{self.rate.period:g}|"

    def __repr__(self) -> str:
        return f"RateLimit({self.rate}, scope={self.scope!r})"

    def matches(self, path: str, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        prefix = self._prefix
        return prefix is None or path == prefix or path.startswith(prefix + "/")

    async def _counters(self, scope: Scope, url: str | None) -> Counters:
        url = self.url or url or _default_url(scope)
        if _is_memory(url):
            return self._memory
        counters = await shared_counters(url)
        app = scope.get(APP_SCOPE_KEY)
        if app is not None and app not in _closing_apps:
            _closing_apps.add(app)
            app.on_shutdown(close_storages)
        return counters

    async def hit(self, connection: HTTPConnection, url: str | None = None) -> Window | None:
        """Count ``connection``'s request; its window, or None when the key exempts it (or
        the storage is down and ``fail_open``). ``url`` is used when the limit has none."""
        who = self.key(connection)
        if who is None:
            return None
        if not isinstance(who, str):
            raise TypeError(f"the key function {self.key!r} returned {who!r}; it must return "
                            f"a str, or None to exempt the request")
        try:
            counters = await self._counters(connection.scope, url)
            return await counters.hit(self._key_prefix + _client_part(who), self.rate.period)
        except BackendUnavailable as exc:
            if not self.fail_open:
                logger.error("%r: counters unavailable, request refused: %s", self, exc)
                raise HTTPException(503, "rate-limit storage unavailable",
                                    headers={"retry-after": "1"}) from exc
            logger.warning("%r: counters unavailable, request let through: %s", self, exc)
            return None

    def headers(self, window: Window) -> dict[str, str]:
        reset = str(max(1, math.ceil(window.reset_in)))
        headers = {"ratelimit-limit": str(self.rate.amount),
                   "ratelimit-remaining": str(max(0, self.rate.amount - window.hits)),
                   "ratelimit-reset": reset}
        if window.hits > self.rate.amount:
            headers["retry-after"] = reset
        return headers

    async def check(self, connection: HTTPConnection, url: str | None = None) -> Window | None:
        """:meth:`hit`, raising :class:`RateLimitExceeded` when the request is over the
        limit."""
        window = await self.hit(connection, url)
        if window is not None and window.hits > self.rate.amount:
            raise RateLimitExceeded(self.rate, self.headers(window))
        return window

    def __call__(self, handler: F) -> F:
        """Limit a route handler (QakeAPI, FastAPI): put it under ``@app.get(...)``.

        The limit is checked once the handler's parameters are read; to refuse a flood
        before it reads any body, use :class:`RateLimitMiddleware`."""
        if not callable(handler):
            raise TypeError(f"rate_limit decorates a route handler, got {handler!r}")
        if getattr(handler, ROUTED_HANDLER_MARK, False):
            raise TypeError(
                f"@rate_limit is above the route decorator of "
                f"{getattr(handler, '__qualname__', handler)!r}: put it under @app.get(...) "
                f"(the route already serves the handler without the limit)")
        if not self._named:
            self.scope = f"{handler.__module__}.{handler.__qualname__}"
        return _limited(handler, self)


def _limited(handler: F, limit: RateLimit) -> F:
    signature = inspect.signature(handler)
    try:
        hints = typing.get_type_hints(handler)
    except Exception:  # unresolved forward references: the framework reports them
        hints = {}
    request_name = next((name for name in signature.parameters if isinstance(
        hints.get(name), type) and issubclass(hints[name], _StarletteRequest)), None)
    added = request_name is None
    name = request_name or _REQUEST_PARAM
    params = list(signature.parameters.values())
    if added:
        extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                  annotation=_StarletteRequest)
        at = next((i for i, p in enumerate(params) if p.kind == p.VAR_KEYWORD), len(params))
        params.insert(at, extra)
    is_async = inspect.iscoroutinefunction(handler)

    @functools.wraps(handler)
    async def limited(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.pop(name) if added else kwargs[name]
        await limit.check(request)
        if is_async:
            return await handler(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(handler, *args, **kwargs))

    limited.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    limited.__annotations__ = {**getattr(handler, "__annotations__", {}),
                               name: _StarletteRequest}
    return limited  # type: ignore[return-value]


def rate_limit(rate: str | Rate, *, key: KeyFunc = client_ip, url: str | None = None,
               scope: str | None = None, fail_open: bool = False) -> RateLimit:
    """``@rate_limit("5/second")`` under ``@app.get(...)``: a :class:`RateLimit` decorator."""
    return RateLimit(rate, key=key, url=url, scope=scope, fail_open=fail_open)


async def close_storages() -> None:
    """Close the SQLite/Redis connections rate limits opened in this event loop (they reopen
    when used again). QakeAPI apps and :class:`RateLimitMiddleware` call it at shutdown; a
    FastAPI app using only decorators calls it in its lifespan."""
    await close_shared()


class RateLimitMiddleware:
    """ASGI middleware applying ``limits`` (RateLimits or rate strings, every one that
    matches a request counts it) before the app runs, with ``RateLimit-*`` headers on the
    responses of limited requests when ``headers`` is True.

    ``app.add_middleware(RateLimitMiddleware, url="sqlite:///tasks.db", limits=[...])``;
    ``url`` serves the limits that have none. A request no limit matches costs one
    path/method test per limit."""

    def __init__(self, app: ASGIApp, *, limits: Sequence[RateLimit | str],
                 url: str | None = None, headers: bool = True) -> None:
        if isinstance(limits, (str, RateLimit)):
            limits = [limits]
        self.app = app
        self.limits = [limit if isinstance(limit, RateLimit) else RateLimit(limit)
                       for limit in limits]
        if url is not None:
            scheme_of(url)
        self.url = url
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            applying = [limit for limit in self.limits if limit.matches(path, method)]
            if applying:
                await self._limited(applying, scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, functools.partial(self._lifespan_send, send))
            return
        await self.app(scope, receive, send)

    async def _limited(self, applying: list[RateLimit], scope: Scope, receive: Receive,
                       send: Send) -> None:
        connection = HTTPConnection(scope)
        shown: dict[str, str] | None = None
        least = math.inf
        try:
            for limit in applying:
                window = await limit.check(connection, self.url)
                if window is not None and limit.rate.amount - window.hits < least:
                    least = limit.rate.amount - window.hits
                    shown = limit.headers(window)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                    headers=exc.headers)
            await response(scope, receive, send)
            return
        if shown is None or not self.headers:
            await self.app(scope, receive, send)
            return
        extra = [(name.encode(), value.encode()) for name, value in shown.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # An inner limit (a decorator's 429) has said more precisely: keep its own.
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _lifespan_send(send: Send, message: Message) -> None:
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            try:
                await close_storages()
            except Exception:
                logger.exception("closing the rate-limit storages failed")
        await send(message)
