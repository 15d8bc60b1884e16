"""Handler parameters, planned once per handler and filled per request.

By name and annotation: ``request`` (or a ``Request`` annotation); path parameters; other
scalars from the query string; a ``dict``/``list``/dataclass from the JSON body;
``x: T = Inject(T)`` from the container. A value that is missing or can't be converted is
reported as a 422 naming the parameter.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as _StarletteRequest

from ._inject import DependencyError, InjectMarker, Resolver
from .exceptions import HTTPException

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["CallablePlan", "RequestValidationError", "plan_callable"]

REQUEST, PATH, QUERY, BODY, INJECT = range(5)
_MISSING: Any = inspect.Parameter.empty
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class RequestValidationError(HTTPException):
    """422: parameters that could not be filled; ``detail`` lists them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, errors)
        self.errors = errors


def _to_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean")


def _to_finite_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def _is_json_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json"))


_SCALARS: dict[Any, Callable[[str], Any]] = {
    int: int,
    float: _to_finite_float,
    str: str,
    bool: _to_bool,
    uuid.UUID: uuid.UUID,
}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_body_type(annotation: Any) -> bool:
    base = typing.get_origin(annotation) or annotation
    return base in (dict, list) or dataclasses.is_dataclass(base)


def _is_request_type(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, _StarletteRequest)


@dataclasses.dataclass(slots=True)
class _Param:
    name: str
    kind: int
    annotation: Any
    default: Any
    convert: Callable[[Any], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING


def _build_body(annotation: Any, value: Any) -> Any:
    base = typing.get_origin(annotation) or annotation
    if base is dict and not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    if base is list and not isinstance(value, list):
        raise ValueError("expected a JSON array")
    if dataclasses.is_dataclass(base) and isinstance(base, type):
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        names = {f.name for f in dataclasses.fields(base)}
        extra = sorted(set(value) - names)
        if extra:
            raise ValueError(f"unexpected field(s): {', '.join(extra)}")
        try:
            return base(**value)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    return value


class CallablePlan:
    """How to fill one callable's parameters."""

    __slots__ = ("body_params", "has_http", "needs_body", "params", "request_only")

    def __init__(self, params: list[_Param]) -> None:
        self.params = params
        self.request_only: str | None = (
            params[0].name if len(params) == 1 and params[0].kind == REQUEST else None
        )
        """The parameter's name when the request is all the callable takes."""
        self.body_params = [p for p in params if p.kind == BODY]
        self.needs_body = bool(self.body_params)
        self.has_http = any(p.kind in (PATH, QUERY, BODY) for p in params)

    async def resolve(self, request: Request, container: Resolver) -> dict[str, Any]:
        """Keyword arguments for a request; raises RequestValidationError (422) or
        HTTPException (400, malformed body)."""
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        body: Any = _MISSING
        if self.needs_body:
            raw = await request.body()
            if raw:
                content_type = request.headers.get("content-type")
                if not _is_json_type(content_type):
                    raise RequestValidationError([{
                        "loc": ["body"],
                        "msg": f"expected a JSON body (Content-Type: application/json), "
                               f"got Content-Type {content_type!r}"}])
                body = await request.json()
        for p in self.params:
            kind = p.kind
            if kind == REQUEST:
                kwargs[p.name] = request
            elif kind == INJECT:
                kwargs[p.name] = await container.resolve(p.default.dependency, request)
            elif kind in (PATH, QUERY):
                source = request.path_params if kind == PATH else request.query_params
                raw_value = source.get(p.name, _MISSING)
                if raw_value is _MISSING:
                    if p.required:
                        errors.append(_error(kind, p.name, "field required"))
                    else:
                        kwargs[p.name] = p.default
                    continue
                try:
                    kwargs[p.name] = p.convert(raw_value) if p.convert else raw_value
                except (ValueError, TypeError) as exc:
                    errors.append(_error(kind, p.name, f"invalid value: {exc}"))
            else:
                value = body
                if len(self.body_params) > 1:
                    value = body.get(p.name, _MISSING) if isinstance(body, dict) else _MISSING
                if value is _MISSING:
                    if p.required:
                        errors.append(_error(BODY, p.name, "field required"))
                    else:
                        kwargs[p.name] = p.default
                    continue
                try:
                    kwargs[p.name] = _build_body(p.annotation, value)
                except ValueError as exc:
                    errors.append(_error(BODY, p.name, str(exc)))
        if errors:
            raise RequestValidationError(errors)
        return kwargs

    async def resolve_dependencies(
        self, request: Request | None, container: Resolver
    ) -> dict[str, Any]:
        """Keyword arguments for a dependency factory (request and Inject parameters only)."""
        kwargs: dict[str, Any] = {}
        for p in self.params:
            if p.kind == REQUEST:
                if request is None:
                    raise DependencyError(f"{p.name!r} needs a request, and there is none")
                kwargs[p.name] = request
            elif p.kind == INJECT:
                kwargs[p.name] = await container.resolve(p.default.dependency, request)
        return kwargs


def _error(kind: int, name: str, msg: str) -> dict[str, Any]:
    where = {PATH: "path", QUERY: "query", BODY: "body"}[kind]
    return {"loc": [where, name], "msg": msg}


def plan_callable(
    fn: Callable[..., Any], *, path_params: Iterable[str], allow_http_params: bool = True
) -> CallablePlan:
    """Plan ``fn``'s parameters. Raises TypeError for a parameter that can never be filled."""
    path_names = set(path_params)
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    params: list[_Param] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        default = parameter.default
        if isinstance(default, InjectMarker):
            params.append(_Param(name, INJECT, annotation, default))
            continue
        if name == "request" or _is_request_type(annotation):
            params.append(_Param(name, REQUEST, annotation, default))
            continue
        if not allow_http_params:
            if default is _MISSING:
                raise TypeError(
                    f"dependency {getattr(fn, '__qualname__', fn)!r}: parameter {name!r} "
                    f"can't be filled (use request or Inject(...))"
                )
            continue
        inner, optional = _strip_optional(annotation)
        if optional and default is _MISSING:
            default = None
        if name in path_names:
            params.append(_Param(name, PATH, inner, default, _SCALARS.get(inner)))
        elif _is_body_type(inner):
            params.append(_Param(name, BODY, inner, default))
        elif inner is _MISSING or inner is Any or inner in _SCALARS:
            params.append(_Param(name, QUERY, inner, default, _SCALARS.get(inner)))
        else:
            raise TypeError(
                f"handler {getattr(fn, '__qualname__', fn)!r}: can't fill parameter {name!r} "
                f"of type {inner!r} (use a scalar, dict, list, dataclass, request or Inject)"
            )
    return CallablePlan(params)
