"""Routes: ``@app.get("/users/{user_id}")`` and a ``Router`` that groups them in a module.

Each handler becomes a :class:`HandlerEndpoint`, an ASGI app that fills the handler's
parameters (planned once, see :mod:`qakeapi._params`), runs it (plain functions in a worker
thread) and turns its return value into a response. When the handler raises, the tasks it
added during the request are dropped.

Route options (:class:`RouteOptions`: ``status_code=``, ``response_model=``, OpenAPI fields)
are keyword arguments of every route decorator. A route without ``status_code``,
``response_model``, a ``response`` parameter or a ``yield`` dependency takes the short path
of the old endpoint: a returned ``dict``/``list`` is sent without a response object.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

import anyio.to_thread
from starlette.routing import BaseRoute, Match, Route, WebSocketRoute, compile_path
from starlette.types import Receive, Scope, Send

from ._params import CallablePlan, merge_sub_response, plan_callable
from ._responding import ResponseShaper, ResponseValidationError, to_response
from ._route_dependencies import as_markers, with_dependencies
from ._websocket import WebSocketEndpoint
from .constants import ROUTED_HANDLER_MARK
from .core._request_tasks import current_request_tasks
from .dependencies import DependencyError
from .requests import Request
from .responses import send_json

if TYPE_CHECKING:
    from .dependencies import Container

__all__ = [
    "APP_SCOPE_KEY",
    "HandlerEndpoint",
    "ResponseValidationError",
    "RouteOptions",
    "Router",
    "WebSocketEndpoint",
    "build_route",
    "build_websocket_route",
    "to_response",
]

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("qakeapi.app")

APP_SCOPE_KEY = "qakeapi.app"
"""Scope key: the innermost ``QakeAPI`` a request passed through. Its container serves
endpoints that no app added (built with :func:`build_route` and mounted)."""


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """What a route decorator takes besides path and name; OpenAPI reads the whole of it."""

    status_code: int | None = None
    response_model: Any = None
    tags: tuple[str, ...] = ()
    summary: str | None = None
    description: str | None = None
    deprecated: bool = False
    include_in_schema: bool = True
    operation_id: str | None = None
    responses: Mapping[int, Any] | None = None
    dependencies: tuple[Any, ...] = ()
    """``Depends(check)`` run before the handler for their effect (FastAPI's
    ``dependencies=[...]``); a router's and the app's come first."""
    condition: Callable[[Request], bool] | None = None
    """Serve the route only to requests for which ``condition(request)`` is true (headers,
    query, path; no body): otherwise matching goes on to the next route, e.g. one for the
    same path without a condition (QakeAPI 1.3.1's conditional routes)."""

    def __post_init__(self) -> None:
        status = self.status_code
        if status is not None and (
                isinstance(status, bool) or not isinstance(status, int)
                or not 100 <= status <= 599):
            raise ValueError(f"status_code must be an HTTP status (100-599), got {status!r}")
        if isinstance(self.tags, str):
            raise TypeError(f"tags must be a list of strings, got the string {self.tags!r}")
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "dependencies", as_markers(self.dependencies))
        condition = self.condition
        if condition is not None and (
                not callable(condition) or inspect.iscoroutinefunction(condition)):
            raise TypeError(f"condition must be a plain function of the request (it runs "
                            f"while routes are matched), got {condition!r}")

    def under(self, parent: RouteOptions) -> RouteOptions:
        """These options for a route of a router whose defaults are ``parent``."""
        responses = {**(parent.responses or {}), **(self.responses or {})} or None
        tags = parent.tags + tuple(t for t in self.tags if t not in parent.tags)
        dependencies = parent.dependencies + tuple(
            d for d in self.dependencies if d not in parent.dependencies)
        return _replace(self, tags=tags, responses=responses, dependencies=dependencies,
                        deprecated=self.deprecated or parent.deprecated,
                        include_in_schema=self.include_in_schema and parent.include_in_schema)


def _replace(options: RouteOptions, **changes: Any) -> RouteOptions:
    fields = {name: getattr(options, name) for name in RouteOptions.__slots__}
    return RouteOptions(**{**fields, **changes})


class RouteKwargs(TypedDict, total=False):
    """The keyword arguments of the route decorators: the fields of :class:`RouteOptions`."""

    status_code: int | None
    response_model: Any
    tags: tuple[str, ...] | list[str]
    summary: str | None
    description: str | None
    deprecated: bool
    include_in_schema: bool
    operation_id: str | None
    responses: Mapping[int, Any] | None
    dependencies: tuple[Any, ...] | list[Any]
    condition: Callable[[Request], bool] | None


class HandlerEndpoint:
    """The ASGI app behind one route."""

    __slots__ = ("container", "handler", "is_async", "options", "plan", "shaper", "simple")

    def __init__(self, handler: Callable[..., Any], plan: CallablePlan,
                 options: RouteOptions | None = None) -> None:
        self.handler = handler
        self.plan = plan
        self.options = options or RouteOptions()
        self.is_async = inspect.iscoroutinefunction(handler)
        self.container: Container | None = None
        name = getattr(handler, "__qualname__", repr(handler))
        self.shaper = ResponseShaper(name, self.options.status_code, self.options.response_model)
        self.simple = (self.shaper.is_plain and not plan.uses_response
                       and not plan.has_teardown)
        """Whether the short path serves this route."""

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

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        if self.is_async:
            return await self.handler(**kwargs)
        return await anyio.to_thread.run_sync(functools.partial(self.handler, **kwargs))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.simple:
            await self._serve_with_options(scope, receive, send)
            return
        request = Request(scope, receive, send)
        plan = self.plan
        try:
            # Inside the try: tasks a dependency added are dropped when a later parameter
            # fails (422) or the body can't be read (400, 408, 413).
            if not plan.params:
                kwargs: dict[str, Any] = {}
            elif plan.request_only is not None:
                kwargs = {plan.request_only: request}
            else:
                kwargs = await plan.resolve(request, self._container(scope))
            if self.is_async:
                result = await self.handler(**kwargs)
            else:
                result = await anyio.to_thread.run_sync(functools.partial(self.handler, **kwargs))
        except BaseException as exc:
            _drop_request_tasks(exc)
            raise
        if type(result) is dict or type(result) is list:
            await send_json(send, result)  # the common case, without a Response object
            return
        await to_response(result)(scope, receive, send)

    async def _serve_with_options(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        plan = self.plan
        # Dependencies that yield end when the stack closes: after the response was sent
        # (a handler's error is thrown into them); the request's background tasks start
        # after that.
        async with AsyncExitStack() as stack:
            try:
                if not plan.params:
                    kwargs: dict[str, Any] = {}
                else:
                    kwargs = await plan.resolve(request, self._container(scope), stack)
                result = await self._call(kwargs)
                response = self.shaper.respond(result)
                if plan.uses_response:
                    merge_sub_response(scope, response)
            except BaseException as exc:
                _drop_request_tasks(exc)
                raise
            await response(scope, receive, send)


def _drop_request_tasks(exc: BaseException) -> None:
    holder = current_request_tasks.get()
    if holder is not None:
        holder.drop(f"the handler raised {type(exc).__name__}: {exc}")


class _RouteSpec:
    __slots__ = ("handler", "methods", "name", "options", "path")

    def __init__(self, path: str, methods: list[str] | None, handler: Callable[..., Any],
                 name: str, options: RouteOptions) -> None:
        self.path = path
        self.methods = methods
        """``None`` for a WebSocket route."""
        self.handler = handler
        self.name = name
        self.options = options

    def build(self) -> BaseRoute:
        if self.methods is None:
            return build_websocket_route(self.path, self.handler, self.name)
        return build_route(self.path, self.handler, self.methods, self.name, self.options)


class Router:
    """A group of routes, included in an app with ``app.include_router(router, prefix=...)``.

    ``tags``, ``responses``, ``deprecated`` and ``include_in_schema`` given here apply to
    every route of the router (merged with each route's own)."""

    def __init__(
        self,
        prefix: str = "",
        *,
        tags: tuple[str, ...] | list[str] = (),
        responses: Mapping[int, Any] | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
        dependencies: tuple[Any, ...] | list[Any] = (),
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.defaults = RouteOptions(tags=tuple(tags), responses=responses,
                                     deprecated=deprecated, include_in_schema=include_in_schema,
                                     dependencies=tuple(dependencies))
        self._specs: list[_RouteSpec] = []
        self._routes: list[BaseRoute] = []

    @property
    def routes(self) -> list[BaseRoute]:
        """The Starlette routes built from this router's handlers, in the order added."""
        return list(self._routes)

    def route(self, path: str, methods: list[str], *, name: str | None = None,
              **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        def decorator(handler: F) -> F:
            self.add_route(path, handler, methods=methods, name=name, **options)
            return handler

        return decorator

    def get(self, path: str, *, name: str | None = None,
            **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.route(path, ["GET"], name=name, **options)

    def post(self, path: str, *, name: str | None = None,
             **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.route(path, ["POST"], name=name, **options)

    def put(self, path: str, *, name: str | None = None,
            **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.route(path, ["PUT"], name=name, **options)

    def patch(self, path: str, *, name: str | None = None,
              **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.route(path, ["PATCH"], name=name, **options)

    def delete(self, path: str, *, name: str | None = None,
               **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.route(path, ["DELETE"], name=name, **options)

    def websocket(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        """``@router.websocket("/ws")``: the handler takes a ``WebSocket`` (by annotation or
        the name ``websocket``) plus path, query and ``Inject``/``Depends`` parameters."""
        def decorator(handler: F) -> F:
            self.add_websocket_route(path, handler, name=name)
            return handler

        return decorator

    def add_route(
        self,
        path: str,
        handler: Callable[..., Any],
        *,
        methods: list[str] | None = None,
        name: str | None = None,
        **options: Unpack[RouteKwargs],
    ) -> None:
        _check(self.prefix + path, handler)
        route_options = RouteOptions(**options).under(self.defaults)  # type: ignore[arg-type]
        self._add(_RouteSpec(self.prefix + path, methods or ["GET"], handler,
                             name or handler.__name__, route_options))

    def add_websocket_route(self, path: str, handler: Callable[..., Any], *,
                            name: str | None = None) -> None:
        _check(self.prefix + path, handler)
        self._add(_RouteSpec(self.prefix + path, None, handler, name or handler.__name__,
                             RouteOptions(include_in_schema=False)))

    def _add(self, spec: _RouteSpec) -> None:
        route = spec.build()  # planned once, here: a bad handler fails when it is added
        with contextlib.suppress(AttributeError, TypeError):  # builtins, bound methods
            setattr(spec.handler, ROUTED_HANDLER_MARK, True)
        self._specs.append(spec)
        self._routes.append(route)
        self._on_added(route)

    def include_router(self, router: Router, prefix: str = "", *,
                       tags: tuple[str, ...] | list[str] = (),
                       responses: Mapping[int, Any] | None = None,
                       dependencies: tuple[Any, ...] | list[Any] = ()) -> None:
        """Serve ``router``'s routes under ``prefix``; ``tags``, ``responses`` and
        ``dependencies`` are added to each of its HTTP routes (before the router's own)."""
        prefix = prefix.rstrip("/")
        included = RouteOptions(tags=tuple(tags), responses=responses,
                                dependencies=tuple(dependencies))
        for spec in router._specs:
            options = spec.options if spec.methods is None else (
                spec.options.under(included).under(self.defaults))
            self._add(_RouteSpec(self.prefix + prefix + spec.path, spec.methods, spec.handler,
                                 spec.name, options))

    def _on_added(self, route: BaseRoute) -> None:
        """Hook for the app, which serves each route as it is added."""


def _check(path: str, handler: Callable[..., Any]) -> None:
    if not callable(handler):
        raise TypeError(f"route handler for {path!r} must be callable, got {handler!r}")
    if not path.startswith("/"):
        raise ValueError(f"route path must start with '/': {path!r}")


def build_route(path: str, handler: Callable[..., Any], methods: list[str], name: str,
                options: RouteOptions | None = None) -> BaseRoute:
    """A Starlette ``Route`` whose ``endpoint`` is the handler's :class:`HandlerEndpoint`."""
    _, _, convertors = compile_path(path)
    if options is not None and options.dependencies:
        handler = with_dependencies(handler, options.dependencies)
    plan = plan_callable(handler, path_params=convertors.keys())
    endpoint = HandlerEndpoint(handler, plan, options)
    condition = endpoint.options.condition
    if condition is not None:
        return _ConditionalRoute(path, condition, endpoint=endpoint, methods=methods, name=name,
                                 include_in_schema=endpoint.options.include_in_schema)
    return Route(path, endpoint=endpoint, methods=methods, name=name,
                 include_in_schema=endpoint.options.include_in_schema)


class _ConditionalRoute(Route):
    """A route that matches only the requests its ``condition`` accepts."""

    def __init__(self, path: str, condition: Callable[[Request], bool], **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.condition = condition

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.NONE:
            return match, child_scope
        if not self.condition(Request({**scope, **child_scope})):
            return Match.NONE, {}
        return match, child_scope


def build_websocket_route(path: str, handler: Callable[..., Any], name: str) -> BaseRoute:
    """A Starlette ``WebSocketRoute`` whose ``endpoint`` is a :class:`WebSocketEndpoint`."""
    _, _, convertors = compile_path(path)
    return WebSocketRoute(path, endpoint=WebSocketEndpoint(handler, convertors.keys()),
                          name=name)
