"""Routes: ``@app.get("/users/{user_id}")`` and a ``Router`` that groups them in a module.

Each handler becomes a :class:`HandlerEndpoint`, an ASGI app that fills the handler's
parameters (planned once, see :mod:`qakeapi._params`), runs it (plain functions in a worker
thread) and turns its return value into a response. When the handler raises, the tasks it
added during the request are dropped.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from starlette.routing import BaseRoute, Route, compile_path
from starlette.types import Receive, Scope, Send

from ._params import CallablePlan, merge_sub_response, plan_callable
from .core._request_tasks import current_request_tasks
from .dependencies import DependencyError
from .requests import Request
from .responses import JSONResponse, PlainTextResponse, Response, send_json

if TYPE_CHECKING:
    from .dependencies import Container

__all__ = ["APP_SCOPE_KEY", "HandlerEndpoint", "Router", "to_response"]

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("qakeapi.app")

APP_SCOPE_KEY = "qakeapi.app"
"""Scope key: the innermost ``QakeAPI`` a request passed through. Its container serves
endpoints that no app added (built with :func:`build_route` and mounted)."""


def to_response(result: Any) -> Response:
    """A handler's return value as a response: JSON for data, ``(body, status)`` tuples."""
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        body, status = result
        if isinstance(body, Response):
            body.status_code = status
            return body
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)
    return JSONResponse(result)


class HandlerEndpoint:
    """The ASGI app behind one route."""

    __slots__ = ("container", "handler", "is_async", "plan")

    def __init__(self, handler: Callable[..., Any], plan: CallablePlan) -> None:
        self.handler = handler
        self.plan = plan
        self.is_async = inspect.iscoroutinefunction(handler)
        self.container: Container | None = None

    def _container(self, scope: Scope) -> Container:
        if self.container is not None:
            return self.container
        app = scope.get(APP_SCOPE_KEY)
        if app is None:
            raise DependencyError(
                f"{getattr(self.handler, '__qualname__', self.handler)!r} takes Inject(...) "
                f"parameters but is not served by a QakeAPI app")
        container: Container = app.container
        return container

    async def __call__(self, scope: Scope, receive: Receive, send: Send,
                       stack: contextlib.AsyncExitStack | None = None) -> None:
        plan = self.plan
        if plan.has_teardown and stack is None:
            # Dependencies that yield end after the response was sent (a handler's error is
            # thrown into them); the request's background tasks start after that.
            async with contextlib.AsyncExitStack() as stack:
                await self(scope, receive, send, stack)
            return
        request = Request(scope, receive, send)
        try:
            # Inside the try: tasks a dependency added are dropped when a later parameter
            # fails (422) or the body can't be read (400, 408, 413).
            if not plan.params:
                kwargs: dict[str, Any] = {}
            elif plan.request_only is not None:
                kwargs = {plan.request_only: request}
            else:
                kwargs = await plan.resolve(request, self._container(scope), stack)
            if self.is_async:
                result = await self.handler(**kwargs)
            else:
                result = await anyio.to_thread.run_sync(functools.partial(self.handler, **kwargs))
        except BaseException as exc:
            holder = current_request_tasks.get()
            if holder is not None:
                holder.drop(f"the handler raised {type(exc).__name__}: {exc}")
            raise
        if plan.uses_response:
            await _send_merged(scope, receive, send, result)
            return
        if type(result) is dict or type(result) is list:
            await send_json(send, result)  # the common case, without a Response object
            return
        await to_response(result)(scope, receive, send)


async def _send_merged(scope: Scope, receive: Receive, send: Send, result: Any) -> None:
    """Send ``result`` with what the handler set on its ``response: Response`` parameter."""
    response = to_response(result)
    merge_sub_response(scope, response)
    await response(scope, receive, send)


class _RouteSpec:
    __slots__ = ("handler", "methods", "name", "path")

    def __init__(self, path: str, methods: list[str], handler: Callable[..., Any], name: str):
        self.path = path
        self.methods = methods
        self.handler = handler
        self.name = name


class Router:
    """A group of routes, included in an app with ``app.include_router(router, prefix=...)``."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self._specs: list[_RouteSpec] = []

    def route(self, path: str, methods: list[str], *, name: str | None = None) -> Callable[[F], F]:
        def decorator(handler: F) -> F:
            self.add_route(path, handler, methods=methods, name=name)
            return handler

        return decorator

    def get(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        return self.route(path, ["GET"], name=name)

    def post(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        return self.route(path, ["POST"], name=name)

    def put(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        return self.route(path, ["PUT"], name=name)

    def patch(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        return self.route(path, ["PATCH"], name=name)

    def delete(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        return self.route(path, ["DELETE"], name=name)

    def add_route(
        self,
        path: str,
        handler: Callable[..., Any],
        *,
        methods: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"route handler for {path!r} must be callable, got {handler!r}")
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        spec = _RouteSpec(self.prefix + path, methods or ["GET"], handler, name or handler.__name__)
        build_route(spec.path, spec.handler, spec.methods, spec.name)  # fail early on bad handlers
        self._specs.append(spec)
        self._on_added(spec)

    def include_router(self, router: Router, prefix: str = "") -> None:
        for spec in router._specs:
            self.add_route(prefix.rstrip("/") + spec.path, spec.handler, methods=spec.methods,
                           name=spec.name)

    def _on_added(self, spec: _RouteSpec) -> None:
        """Hook for the app, which turns specs into Starlette routes."""


def build_route(path: str, handler: Callable[..., Any], methods: list[str], name: str) -> BaseRoute:
    _, _, convertors = compile_path(path)
    plan = plan_callable(handler, path_params=convertors.keys())
    endpoint = HandlerEndpoint(handler, plan)
    return Route(path, endpoint=endpoint, methods=methods, name=name)
