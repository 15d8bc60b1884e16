"""Filling a planned callable's parameters for one request (:class:`CallablePlan`), its
dependencies included: once per request each, generators entered on the request's exit
stack, errors collected into one 422. Planning is :mod:`qakeapi._params`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response as _StarletteResponse

from ._inject import DependencyError, InjectMarker, Resolver
from ._params_body import BodyPlan
from ._params_fields import (
    BODY_SOURCES,
    HTTP_SOURCES,
    INVALID,
    FieldCheck,
    ParamSpec,
    RequestValidationError,
    missing_error,
)
from .core.background import add_background_task

if TYPE_CHECKING:
    from .requests import Request

__all__ = [
    "BACKGROUND",
    "BACKGROUND_SCOPE_KEY",
    "BODY",
    "CACHE_SCOPE_KEY",
    "CONTAINER",
    "DEPENDS",
    "REQUEST",
    "RESPONSE",
    "SCALAR",
    "SUB_RESPONSE_SCOPE_KEY",
    "WEBSOCKET",
    "CallablePlan",
    "merge_sub_response",
    "qualname",
]

CACHE_SCOPE_KEY = "qakeapi.dependency_cache"
"""Scope key: the values dependencies gave during this request, by dependency."""
BACKGROUND_SCOPE_KEY = "qakeapi.background_tasks"
"""Scope key: the ``BackgroundTasks`` given to FastAPI-style parameters in this request."""
SUB_RESPONSE_SCOPE_KEY = "qakeapi.sub_response"
"""Scope key: the ``Response`` given to ``response: Response`` parameters in this request."""

# Step kinds, in the order a request most often needs them.
SCALAR, REQUEST, BODY, DEPENDS, CONTAINER, RESPONSE, WEBSOCKET, BACKGROUND = range(8)
_FN_PLAIN, _FN_ASYNC, _FN_GEN, _FN_ASYNC_GEN = range(4)


class _Ctx:
    """One request's state while its dependency tree is filled."""

    __slots__ = ("body", "container", "errors", "request", "stack")

    def __init__(self, request: HTTPConnection, container: Resolver,
                 stack: contextlib.AsyncExitStack | None) -> None:
        self.request = request
        self.container = container
        self.stack = stack
        self.errors: list[dict[str, Any]] = []
        self.body: dict[str, Any] = {}

    def cache(self) -> dict[Any, Any]:
        cache: dict[Any, Any] = self.request.scope.setdefault(CACHE_SCOPE_KEY, {})
        return cache

    def background_tasks(self, cls: type[BackgroundTasks], owner: str) -> BackgroundTasks:
        """The request's one ``BackgroundTasks``; what it holds is added as qakeapi
        background tasks once the response is sent (none if the handler raised)."""
        scope = self.request.scope
        tasks: BackgroundTasks | None = scope.get(BACKGROUND_SCOPE_KEY)
        if tasks is None:
            if self.stack is None:
                raise DependencyError(f"{owner!r} takes BackgroundTasks, and the caller gave "
                                      f"no exit stack")
            tasks = cls()
            scope[BACKGROUND_SCOPE_KEY] = tasks
            self.stack.push_async_exit(_add_after_response(tasks))
        return tasks

    def sub_response(self) -> _StarletteResponse:
        scope = self.request.scope
        response: _StarletteResponse | None = scope.get(SUB_RESPONSE_SCOPE_KEY)
        if response is None:
            response = _StarletteResponse()
            del response.headers["content-length"]
            response.status_code = None  # type: ignore[assignment]  # None: not set
            scope[SUB_RESPONSE_SCOPE_KEY] = response
        return response


def merge_sub_response(scope: MutableMapping[str, Any], response: _StarletteResponse) -> None:
    """Copy what handlers set on their ``response: Response`` parameter onto ``response``."""
    sub: _StarletteResponse | None = scope.get(SUB_RESPONSE_SCOPE_KEY)
    if sub is None:
        return
    if sub.status_code is not None:
        response.status_code = sub.status_code
    response.raw_headers.extend(sub.raw_headers)


class CallablePlan:
    """How to fill one callable's parameters (and its dependencies')."""

    __slots__ = ("_body", "_fn_kind", "_steps", "fn", "has_teardown", "params", "request_only",
                 "response_param", "uses_response")

    def __init__(self, fn: Callable[..., Any], params: list[ParamSpec],
                 steps: list[tuple[int, ParamSpec, Any]]) -> None:
        self.fn = fn
        self.params = params
        self._steps = steps
        self.request_only: str | None = (
            params[0].name if len(params) == 1 and params[0].source == "request" else None)
        """The parameter's name when the request is all the callable takes."""
        self.response_param: str | None = next(
            (p.name for p in params if p.source == "response"), None)
        subs = [extra for kind, _, extra in steps if kind == DEPENDS]
        self._fn_kind = _fn_kind(fn)
        body = self.body_params()
        self._body = BodyPlan(body, qualname(fn)) if body else None
        self.has_teardown: bool = (
            (self._body is not None and self._body.form)
            or any(p.source == "background" for p in params)
            or any(sub.has_teardown or sub._fn_kind in (_FN_GEN, _FN_ASYNC_GEN)
                   for _, sub in subs))
        """Some dependency in the tree yields, a form's uploaded files are to be closed, or a
        ``BackgroundTasks`` parameter's tasks added: resolve() wants an exit stack, closed
        after the response."""
        self.uses_response: bool = self.response_param is not None or any(
            sub.uses_response for _, sub in subs)
        """Some ``response: Response`` parameter in the tree."""

    # -- what OpenAPI documents -------------------------------------------------------
    def http_params(self) -> list[ParamSpec]:
        """Every HTTP-facing parameter of the tree, each (source, alias) once."""
        found: dict[tuple[str, str], ParamSpec] = {}
        for kind, spec, extra in self._steps:
            if kind == DEPENDS:
                for sub_spec in extra[1].http_params():
                    found.setdefault((sub_spec.source, sub_spec.alias), sub_spec)
            elif spec.source in HTTP_SOURCES:
                found.setdefault((spec.source, spec.alias), spec)
        return list(found.values())

    def body_params(self) -> list[ParamSpec]:
        """The body/form/file parameters among :meth:`http_params`."""
        return [p for p in self.http_params() if p.source in BODY_SOURCES]

    def container_keys(self) -> Iterator[Any]:
        """The keys the tree resolves through the container (for the startup check)."""
        for kind, _spec, extra in self._steps:
            if kind == CONTAINER:
                yield extra.dependency
            elif kind == DEPENDS:
                yield from extra[1].container_keys()

    # -- per request --------------------------------------------------------------------
    async def resolve(self, request: HTTPConnection, container: Resolver,
                      exit_stack: contextlib.AsyncExitStack | None = None) -> dict[str, Any]:
        """Keyword arguments for a request. Dependencies that yield are entered on
        ``exit_stack``. Raises RequestValidationError (422)."""
        ctx = _Ctx(request, container, exit_stack)
        if self._body is not None:
            await self._body.read(request, ctx.body, ctx.errors, exit_stack)
        kwargs = await self._fill(ctx)
        if ctx.errors:
            raise RequestValidationError(ctx.errors)
        return kwargs

    async def resolve_dependencies(self, request: Request | None,
                                   container: Resolver) -> dict[str, Any]:
        """Keyword arguments for a container factory (request and Inject parameters)."""
        if request is not None:
            ctx = _Ctx(request, container, None)
            kwargs = await self._fill(ctx)
            if ctx.errors:
                raise RequestValidationError(ctx.errors)
            return kwargs
        kwargs = {}
        for kind, spec, extra in self._steps:
            if kind in (REQUEST, WEBSOCKET, RESPONSE, BACKGROUND):
                raise DependencyError(f"{spec.name!r} needs a request, and there is none")
            if kind == CONTAINER:
                kwargs[spec.name] = await container.resolve(extra.dependency, None)
            elif kind == DEPENDS:
                kwargs[spec.name] = await container.resolve(extra[1].fn, None)
        return kwargs

    async def _fill(self, ctx: _Ctx) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        request = ctx.request
        for kind, spec, extra in self._steps:
            if kind == SCALAR:
                check: FieldCheck = extra
                source = spec.source
                # Path and single query values inline: what most requests need.
                if source == "query" and not check.many:
                    raw = request.query_params.get(spec.alias)
                elif source == "path":
                    raw = request.path_params.get(spec.alias)
                else:
                    raw = _raw(request, source, spec.alias, check.many)
                if raw is None:
                    if spec.required:
                        ctx.errors.append(missing_error([source, spec.alias]))
                    elif check.factory:
                        kwargs[spec.name] = check.default()
                    else:
                        kwargs[spec.name] = spec.default
                    continue
                fast = check.fast
                if fast is not None:
                    try:
                        kwargs[spec.name] = fast(raw)
                        continue
                    except (ValueError, TypeError):
                        pass  # Pydantic decides, and words the error
                value = check.check(raw, ctx.errors)
                if value is not INVALID:
                    kwargs[spec.name] = value
            elif kind in (REQUEST, WEBSOCKET):
                kwargs[spec.name] = request
            elif kind == BODY:
                if spec.name in ctx.body:
                    kwargs[spec.name] = ctx.body[spec.name]
            elif kind == DEPENDS:
                value = await self._depend(ctx, extra[0], extra[1])
                if value is not INVALID:
                    kwargs[spec.name] = value
            elif kind == CONTAINER:
                kwargs[spec.name] = await self._container(ctx, extra)
            elif kind == RESPONSE:
                kwargs[spec.name] = ctx.sub_response()
            else:
                kwargs[spec.name] = ctx.background_tasks(spec.annotation, qualname(self.fn))
        return kwargs

    @staticmethod
    async def _container(ctx: _Ctx, marker: InjectMarker) -> Any:
        # The container caches its factories' values per request (in the scope).
        return await ctx.container.resolve(marker.dependency, _as_request(ctx.request),
                                           use_cache=marker.use_cache)

    @staticmethod
    async def _depend(ctx: _Ctx, marker: InjectMarker, sub: CallablePlan) -> Any:
        fn = sub.fn
        if fn in ctx.container:  # registered in its place, as FastAPI's dependency_overrides
            return await CallablePlan._container(ctx, marker)
        cache = ctx.cache()
        if marker.use_cache and fn in cache:
            return cache[fn]  # INVALID too: its errors are listed once
        before = len(ctx.errors)
        kwargs = await sub._fill(ctx)
        if len(ctx.errors) > before:
            cache[fn] = INVALID
            return INVALID
        if ctx.errors:
            return INVALID  # the request fails with a 422: run nothing more for it
        kind = sub._fn_kind
        if kind == _FN_ASYNC:
            value = await fn(**kwargs)
        elif kind == _FN_PLAIN:
            # In a worker thread, as FastAPI does: a sync dependency may block.
            value = await anyio.to_thread.run_sync(functools.partial(fn, **kwargs))
            if inspect.isawaitable(value):
                value = await value
        else:
            stack = ctx.stack
            if stack is None:
                raise DependencyError(
                    f"dependency {qualname(fn)!r} yields, and the caller gave no exit stack")
            if kind == _FN_ASYNC_GEN:
                value = await stack.enter_async_context(
                    contextlib.asynccontextmanager(fn)(**kwargs))
            else:
                manager = contextlib.contextmanager(fn)(**kwargs)
                value = await anyio.to_thread.run_sync(manager.__enter__)
                stack.push_async_exit(_exit_in_thread(manager))
        cache[fn] = value
        return value


def _add_after_response(tasks: BackgroundTasks) -> Callable[..., Awaitable[bool]]:
    """Adds what a FastAPI-style ``BackgroundTasks`` holds as qakeapi background tasks (they
    start together once the app has returned), unless the request failed."""

    async def exit_(exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            for task in tasks.tasks:
                await add_background_task(task.func, *task.args, task_kwargs=task.kwargs)
        return False

    return exit_


def _exit_in_thread(manager: contextlib.AbstractContextManager[Any]
                    ) -> Callable[..., Awaitable[bool]]:
    """The teardown of a sync generator dependency, run in a worker thread like its setup."""

    async def exit_(exc_type: Any, exc: Any, tb: Any) -> bool:
        return bool(await anyio.to_thread.run_sync(manager.__exit__, exc_type, exc, tb))

    return exit_


def _as_request(connection: HTTPConnection) -> Request:
    return connection  # type: ignore[return-value]  # the container takes any connection


def _raw(request: HTTPConnection, source: str, alias: str, many: bool) -> Any:
    if source == "query":
        if many:
            return request.query_params.getlist(alias) or None
        return request.query_params.get(alias)
    if source == "path":
        return request.path_params.get(alias)
    if source == "header":
        if many:
            return request.headers.getlist(alias) or None
        return request.headers.get(alias)
    return request.cookies.get(alias)


def _fn_kind(fn: Callable[..., Any]) -> int:
    if inspect.isasyncgenfunction(fn):
        return _FN_ASYNC_GEN
    if inspect.isgeneratorfunction(fn):
        return _FN_GEN
    if inspect.iscoroutinefunction(fn):
        return _FN_ASYNC
    return _FN_PLAIN


def qualname(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", fn))
