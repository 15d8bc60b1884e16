"""Handler parameters, planned once per handler and filled per request.

By marker, name and annotation: ``request`` (or a ``Request``/``WebSocket`` annotation),
``response: Response``; ``Query``/``Path``/``Header``/``Cookie``/``Body``/``Form``/``File``
markers (:mod:`qakeapi.params`); path parameters by name; other scalars (and lists of them)
from the query string; models, dataclasses, dicts and lists from the JSON body;
``UploadFile`` from a multipart form; ``Inject(dep)``/``Depends(dep)`` from the app's
container, or by calling the function ``dep`` with its own parameters (once per request,
entering a generator on the request's exit stack). A value that is missing or invalid is
reported in a 422 naming its location.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import PydanticSchemaGenerationError, PydanticUndefinedAnnotation
from pydantic_core import PydanticUndefined
from starlette.requests import HTTPConnection
from starlette.responses import Response as _StarletteResponse
from starlette.websockets import WebSocket as _StarletteWebSocket

from ._inject import DependencyError, InjectMarker, Resolver
from ._params_body import BodyPlan
from ._params_fields import (
    BODY_SOURCES,
    HTTP_SOURCES,
    INVALID,
    FieldCheck,
    ParamSpec,
    RequestValidationError,
    is_model_like,
    is_scalar_like,
    mentions_upload,
    missing_error,
    strip_optional,
)
from .params import BodyInfo, HeaderInfo, ParamInfo

if TYPE_CHECKING:
    from .requests import Request

__all__ = [
    "CACHE_SCOPE_KEY",
    "SUB_RESPONSE_SCOPE_KEY",
    "CallablePlan",
    "ParamSpec",
    "RequestValidationError",
    "merge_sub_response",
    "plan_callable",
]

CACHE_SCOPE_KEY = "qakeapi.dependency_cache"
"""Scope key: the values dependencies gave during this request, by dependency."""
SUB_RESPONSE_SCOPE_KEY = "qakeapi.sub_response"
"""Scope key: the ``Response`` given to ``response: Response`` parameters in this request."""

_EMPTY: Any = inspect.Parameter.empty
# Step kinds, in the order a request most often needs them.
_SCALAR, _REQUEST, _BODY, _DEPENDS, _CONTAINER, _RESPONSE, _WEBSOCKET = range(7)
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
        subs = [extra for kind, _, extra in steps if kind == _DEPENDS]
        self._fn_kind = _fn_kind(fn)
        body = self.body_params()
        self._body = BodyPlan(body, _qualname(fn)) if body else None
        self.has_teardown: bool = (self._body is not None and self._body.form) or any(
            sub.has_teardown or sub._fn_kind in (_FN_GEN, _FN_ASYNC_GEN) for _, sub in subs)
        """Some dependency in the tree yields, or a form's uploaded files are to be closed:
        resolve() wants an exit stack, closed after the response."""
        self.uses_response: bool = self.response_param is not None or any(
            sub.uses_response for _, sub in subs)
        """Some ``response: Response`` parameter in the tree."""

    # -- what OpenAPI documents -------------------------------------------------------
    def http_params(self) -> list[ParamSpec]:
        """Every HTTP-facing parameter of the tree, each (source, alias) once."""
        found: dict[tuple[str, str], ParamSpec] = {}
        for kind, spec, extra in self._steps:
            if kind == _DEPENDS:
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
            if kind == _CONTAINER:
                yield extra.dependency
            elif kind == _DEPENDS:
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
            if kind in (_REQUEST, _WEBSOCKET, _RESPONSE):
                raise DependencyError(f"{spec.name!r} needs a request, and there is none")
            if kind == _CONTAINER:
                kwargs[spec.name] = await container.resolve(extra.dependency, None)
            elif kind == _DEPENDS:
                kwargs[spec.name] = await container.resolve(extra[1].fn, None)
        return kwargs

    async def _fill(self, ctx: _Ctx) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        request = ctx.request
        for kind, spec, extra in self._steps:
            if kind == _SCALAR:
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
            elif kind in (_REQUEST, _WEBSOCKET):
                kwargs[spec.name] = request
            elif kind == _BODY:
                if spec.name in ctx.body:
                    kwargs[spec.name] = ctx.body[spec.name]
            elif kind == _DEPENDS:
                value = await self._depend(ctx, extra[0], extra[1])
                if value is not INVALID:
                    kwargs[spec.name] = value
            elif kind == _CONTAINER:
                kwargs[spec.name] = await self._container(ctx, extra)
            else:
                kwargs[spec.name] = ctx.sub_response()
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
            value = fn(**kwargs)
            if inspect.isawaitable(value):
                value = await value
        else:
            stack = ctx.stack
            if stack is None:
                raise DependencyError(
                    f"dependency {_qualname(fn)!r} yields, and the caller gave no exit stack")
            if kind == _FN_ASYNC_GEN:
                value = await stack.enter_async_context(
                    contextlib.asynccontextmanager(fn)(**kwargs))
            else:
                value = stack.enter_context(contextlib.contextmanager(fn)(**kwargs))
        cache[fn] = value
        return value


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


def _qualname(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", fn))


def _split_annotated(annotation: Any) -> tuple[Any, Any]:
    """``Annotated[T, Query(...), x]`` as ``(Annotated[T, x], Query(...))``."""
    if typing.get_origin(annotation) is not Annotated:
        return annotation, None
    base, *extras = typing.get_args(annotation)
    marker = None
    rest = []
    for extra in extras:
        if marker is None and isinstance(extra, ParamInfo | InjectMarker):
            marker = extra
        else:
            rest.append(extra)
    if marker is None:
        return annotation, None
    return (Annotated[(base, *rest)] if rest else base), marker


def _special(name: str, annotation: Any) -> str | None:
    if isinstance(annotation, type):
        if issubclass(annotation, _StarletteWebSocket):
            return "websocket"
        if issubclass(annotation, HTTPConnection):
            return "request"
        if issubclass(annotation, _StarletteResponse):
            return "response"
    if name == "request" and annotation in (_EMPTY, Any):
        return "request"
    if name == "websocket" and annotation in (_EMPTY, Any):
        return "websocket"
    return None


def _hints(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """The parameters' annotations, resolved one by one when they can't be all at once (a
    name defined in an enclosing function, under ``from __future__ import annotations``)."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass
    namespace = dict(getattr(fn, "__globals__", {}))
    if inspect.isfunction(fn):
        namespace.update(inspect.getclosurevars(fn).nonlocals)
    hints: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            with contextlib.suppress(Exception):  # left as text: refused below if it matters
                annotation = eval(annotation, namespace)
        hints[name] = annotation
    return hints


def plan_callable(
    fn: Callable[..., Any], *, path_params: Iterable[str], allow_http_params: bool = True
) -> CallablePlan:
    """Plan ``fn``'s parameters. Raises TypeError for a parameter that can never be filled."""
    path_names = set(path_params)
    owner = _qualname(fn)
    signature = inspect.signature(fn)
    hints = _hints(fn, signature)
    params: list[ParamSpec] = []
    steps: list[tuple[int, ParamSpec, Any]] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation, marker = _split_annotated(hints.get(name, parameter.annotation))
        default = parameter.default
        if marker is None and isinstance(default, ParamInfo | InjectMarker):
            marker, default = default, _EMPTY
        if isinstance(marker, InjectMarker):
            spec = ParamSpec(name, "inject", name, annotation, False, marker, None)
            step = _plan_inject(owner, name, marker, annotation, path_names, allow_http_params)
            params.append(spec)
            steps.append((step[0], spec, step[1]))
            continue
        special = None if marker is not None else _special(name, annotation)
        if special is not None:
            spec = ParamSpec(name, special, name, annotation, default is _EMPTY, default, None)
            kind = {"request": _REQUEST, "websocket": _WEBSOCKET, "response": _RESPONSE}[special]
            params.append(spec)
            steps.append((kind, spec, None))
            continue
        if not allow_http_params:
            if default is _EMPTY:
                raise TypeError(f"dependency {owner!r}: parameter {name!r} can't be filled "
                                f"(use request or Inject(...))")
            continue
        spec = _http_spec(owner, name, annotation, default, marker, path_names)
        params.append(spec)
        if spec.source in BODY_SOURCES:
            _check_type(owner, spec)
            steps.append((_BODY, spec, None))
        else:
            steps.append((_SCALAR, spec, _field_check(owner, spec)))
    return CallablePlan(fn, params, steps)


def _plan_inject(owner: str, name: str, marker: InjectMarker, annotation: Any,
                 path_names: set[str], allow_http_params: bool) -> tuple[int, Any]:
    dependency = marker.dependency
    if dependency is None:
        if annotation is _EMPTY:
            raise TypeError(f"handler {owner!r}: Depends() on parameter {name!r} needs an "
                            f"annotation or a dependency")
        dependency = strip_optional(annotation)[0]
        if isinstance(dependency, str | typing.ForwardRef):
            raise TypeError(f"handler {owner!r}: Depends() on parameter {name!r}: can't "
                            f"resolve the annotation {dependency!r}")
        marker = InjectMarker(dependency, marker.use_cache)
    if callable(dependency) and not isinstance(dependency, type):
        sub = plan_callable(dependency, path_params=path_names,
                            allow_http_params=allow_http_params)
        return _DEPENDS, (marker, sub)
    return _CONTAINER, marker


def _http_spec(owner: str, name: str, annotation: Any, default: Any, marker: ParamInfo | None,
               path_names: set[str]) -> ParamSpec:
    if annotation is _EMPTY:
        annotation = str if marker is None or marker.source != "body" else Any
    if marker is not None:
        source = marker.source
        if default is _EMPTY:
            default = marker.default
        if default is PydanticUndefined:
            default = _EMPTY
        alias = marker.alias or name
        if isinstance(marker, HeaderInfo) and marker.alias is None and marker.convert_underscores:
            alias = name.replace("_", "-")
        required = default is _EMPTY and marker.default_factory is None
        embed = isinstance(marker, BodyInfo) and marker.embed
        if source == "header":
            alias = alias.lower()
        if source == "path":
            required = True
        return ParamSpec(name, source, alias, annotation, required,
                         None if default is _EMPTY else default, marker, embed)
    if name in path_names:
        source = "path"
    elif mentions_upload(annotation):
        source = "file"
    elif is_scalar_like(annotation) and not is_model_like(annotation):
        source = "query"
    else:
        source = "body"
    if default is _EMPTY and strip_optional(annotation)[1] and source != "path":
        default = None  # ``x: T | None`` without a default is optional, as it always was here
    required = default is _EMPTY or source == "path"
    return ParamSpec(name, source, name, annotation, required,
                     None if default is _EMPTY else default, None)


def _check_type(owner: str, spec: ParamSpec) -> None:
    try:
        if isinstance(spec.annotation, str | typing.ForwardRef):
            raise PydanticUndefinedAnnotation(str(spec.annotation), "unresolved")
        FieldCheck(spec)
    except (PydanticSchemaGenerationError, PydanticUndefinedAnnotation):
        raise TypeError(
            f"handler {owner!r}: can't fill parameter {spec.name!r} of type "
            f"{spec.annotation!r} (use a scalar, a Pydantic model, a dataclass, dict, list, "
            f"request or Inject)") from None


def _field_check(owner: str, spec: ParamSpec) -> FieldCheck:
    _check_type(owner, spec)
    return FieldCheck(spec)

