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
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import PydanticSchemaGenerationError, PydanticUndefinedAnnotation
from pydantic_core import PydanticUndefined
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response as _StarletteResponse
from starlette.websockets import WebSocket as _StarletteWebSocket

from ._inject import InjectMarker
from ._params_fields import (
    BODY_SOURCES,
    FieldCheck,
    ParamSpec,
    RequestValidationError,
    is_model_like,
    is_scalar_like,
    mentions_upload,
    strip_optional,
)
from ._params_fill import (
    BACKGROUND,
    BODY,
    CACHE_SCOPE_KEY,
    CONTAINER,
    DEPENDS,
    REQUEST,
    RESPONSE,
    SCALAR,
    SUB_RESPONSE_SCOPE_KEY,
    WEBSOCKET,
    CallablePlan,
    merge_sub_response,
    qualname,
)
from .params import BodyInfo, HeaderInfo, ParamInfo

__all__ = [
    "CACHE_SCOPE_KEY",
    "SUB_RESPONSE_SCOPE_KEY",
    "CallablePlan",
    "ParamSpec",
    "RequestValidationError",
    "merge_sub_response",
    "plan_callable",
]

_EMPTY: Any = inspect.Parameter.empty


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
        if issubclass(annotation, BackgroundTasks):
            return "background"
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
    owner = qualname(fn)
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
            kind = {"request": REQUEST, "websocket": WEBSOCKET, "response": RESPONSE,
                    "background": BACKGROUND}[special]
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
            steps.append((BODY, spec, None))
        else:
            steps.append((SCALAR, spec, _field_check(owner, spec)))
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
        return DEPENDS, (marker, sub)
    return CONTAINER, marker


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

