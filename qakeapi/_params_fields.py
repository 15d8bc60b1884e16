"""One handler parameter: what it is (:class:`ParamSpec`), and how a value read from the
request is validated (:class:`FieldCheck`, built once per parameter at registration).

Validation is Pydantic's (a ``TypeAdapter`` per parameter, one per body). Plain ``int``,
``float``, ``str``, ``bool`` and ``UUID`` parameters without constraints are first converted
by hand, which is what a request most often needs and costs a fraction of a validation call;
a value the hand conversion refuses goes to Pydantic, which gives the answer and the error.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import functools
import json
import math
import types
import typing
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, TypeAdapter, ValidationError
from pydantic.errors import PydanticUserError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from starlette.datastructures import UploadFile

from .exceptions import RequestValidationError

__all__ = [
    "BODY_SOURCES",
    "HTTP_SOURCES",
    "INVALID",
    "FieldCheck",
    "ParamSpec",
    "RequestValidationError",
    "errors_from",
    "is_scalar_like",
    "is_sequence",
    "mentions_upload",
    "missing_error",
    "strip_optional",
]

HTTP_SOURCES = frozenset({"path", "query", "header", "cookie", "body", "form", "file"})
BODY_SOURCES = frozenset({"body", "form", "file"})
_SCALAR_TYPES = (int, float, str, bool, bytes, uuid.UUID, decimal.Decimal, datetime.date,
                 datetime.datetime, datetime.time, datetime.timedelta)
_SEQUENCES = (list, set, frozenset, tuple)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


@dataclasses.dataclass(frozen=True, slots=True)
class ParamSpec:
    """A parameter of a handler or dependency: ``name`` in Python, ``alias`` on the wire,
    ``source`` one of :data:`HTTP_SOURCES` or request/response/websocket/inject/background."""

    name: str
    source: str
    alias: str
    annotation: Any
    required: bool
    default: Any
    field_info: FieldInfo | None
    embed: bool = False


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    """``T | None`` as ``(T, True)``; anything else as ``(annotation, False)``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _base(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return strip_optional(annotation)[0]


def _is_scalar(annotation: Any) -> bool:
    annotation = _base(annotation)
    if annotation is Any or typing.get_origin(annotation) is typing.Literal:
        return True
    return isinstance(annotation, type) and issubclass(annotation, (*_SCALAR_TYPES, enum.Enum))


def is_sequence(annotation: Any) -> bool:
    """A list/set/tuple annotation: read from repeated query keys or form fields."""
    annotation = _base(annotation)
    return annotation in _SEQUENCES or typing.get_origin(annotation) in _SEQUENCES


def is_scalar_like(annotation: Any) -> bool:
    """What a query string can carry: a scalar, or a sequence of scalars."""
    if _is_scalar(annotation):
        return True
    if is_sequence(annotation):
        args = typing.get_args(_base(annotation))
        return bool(args) and all(_is_scalar(a) for a in args if a is not Ellipsis)
    return False


def mentions_upload(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, UploadFile):
        return True
    return any(mentions_upload(a) for a in typing.get_args(annotation))


def wants_bytes(annotation: Any) -> bool:
    annotation = _base(annotation)
    return annotation is bytes or (is_sequence(annotation)
                                   and bytes in typing.get_args(annotation))


def _check_upload(value: Any) -> UploadFile:
    if not isinstance(value, UploadFile):
        raise ValueError(f"Expected UploadFile, received: {type(value)}")
    return value


_UPLOAD = Annotated[Any, PlainValidator(_check_upload)]


def _for_validation(annotation: Any) -> Any:
    """``annotation`` with Starlette's UploadFile, which Pydantic doesn't know, checked by
    a validator of our own."""
    if isinstance(annotation, type) and issubclass(annotation, UploadFile):
        return _UPLOAD
    args = typing.get_args(annotation)
    if not args or not mentions_upload(annotation):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return Annotated[(_for_validation(args[0]), *annotation.__metadata__)]
    new_args = tuple(_for_validation(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new_args]  # noqa: UP007 - built from a tuple
    return origin[new_args]


def adapter_type(spec: ParamSpec) -> Any:
    """What Pydantic validates for ``spec``: its annotation with the marker's constraints."""
    annotation = _for_validation(spec.annotation)
    metadata = spec.field_info.metadata if spec.field_info is not None else []
    return Annotated[(annotation, *metadata)] if metadata else annotation


def _to_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def _to_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


_FAST: dict[Any, Callable[[str], Any]] = {
    int: int, float: _to_float, str: str, bool: _to_bool, uuid.UUID: uuid.UUID,
}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return str(value)
    return value


def errors_from(exc: ValidationError, prefix: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors in FastAPI's shape, located under ``prefix`` (e.g. ``["query", "q"]``),
    with every value JSON can carry."""
    found: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {"type": error["type"], "loc": [*prefix, *error["loc"]],
                                "msg": error["msg"], "input": _jsonable(error.get("input"))}
        if "ctx" in error:
            item["ctx"] = {key: _jsonable(value) for key, value in error["ctx"].items()}
        found.append(item)
    return found


def missing_error(loc: list[Any]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any, finite: bool) -> TypeAdapter[Any]:
    if finite:
        try:
            return TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False))
        except PydanticUserError:
            pass  # a model or dataclass, which has its own config
    return TypeAdapter(annotation)


def build_adapter(annotation: Any, *, finite: bool) -> TypeAdapter[Any]:
    """A cached TypeAdapter; ``finite`` refuses nan/inf unless the annotation allows them."""
    try:
        return _adapter(annotation, finite)
    except TypeError:  # unhashable annotation
        return _adapter.__wrapped__(annotation, finite)


class FieldCheck:
    """Validates the raw value of one parameter; built once at registration."""

    __slots__ = ("adapter", "factory", "fast", "loc", "many", "spec", "wants_bytes")

    def __init__(self, spec: ParamSpec) -> None:
        self.spec = spec
        where = "body" if spec.source in BODY_SOURCES else spec.source
        self.loc: list[Any] = [where, spec.alias]
        self.many = is_sequence(spec.annotation)
        self.wants_bytes = wants_bytes(spec.annotation)
        self.factory = (spec.field_info is not None
                        and spec.field_info.default_factory is not None) or isinstance(
            spec.default, list | dict | set | bytearray)
        """The default comes from a factory, or is copied: each request gets its own."""
        in_text = spec.source not in ("body",)
        self.adapter = build_adapter(adapter_type(spec), finite=in_text)
        plain = spec.field_info is None or not spec.field_info.metadata
        self.fast: Callable[[str], Any] | None = (
            _FAST.get(strip_optional(spec.annotation)[0]) if plain and in_text else None)

    def check(self, raw: Any, errors: list[dict[str, Any]]) -> Any:
        """The validated value, or :data:`INVALID` after appending to ``errors``."""
        fast = self.fast
        if fast is not None:
            try:
                return fast(raw)
            except (ValueError, TypeError):
                pass  # Pydantic decides, and words the error
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as exc:
            errors.extend(errors_from(exc, self.loc))
            return INVALID

    def default(self) -> Any:
        info = self.spec.field_info
        if info is not None and info.default_factory is not None:
            return info.get_default(call_default_factory=True, validated_data={})
        return copy.copy(self.spec.default)


def is_model_like(annotation: Any) -> bool:
    base = _base(annotation)
    return dataclasses.is_dataclass(base) or (
        isinstance(base, type) and issubclass(base, BaseModel))


UNDEFINED = PydanticUndefined
INVALID: Any = object()
"""What :meth:`FieldCheck.check` returns for a value it refused."""
