"""Where a handler parameter comes from: ``Query``, ``Path``, ``Header``, ``Cookie``, ``Body``,
``Form``, ``File``, and ``Depends``.

Each marker is a :class:`pydantic.fields.FieldInfo`, so it carries a default, an alias and
Pydantic's constraints, and works both as a default (``q: int = Query(0, ge=0)``) and inside
``Annotated`` (``q: Annotated[int, Query(ge=0)] = 0``), as in FastAPI::

    @app.get("/items/{item_id}")
    async def read(item_id: Annotated[int, Path(gt=0)],
                   ids: list[int] = Query([]),
                   user_agent: str | None = Header(None)) -> dict: ...

``UploadFile`` is Starlette's; ``Depends`` is :func:`qakeapi.Inject` under FastAPI's name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from starlette.datastructures import UploadFile

from ._inject import Depends

__all__ = [
    "Body",
    "BodyInfo",
    "Cookie",
    "CookieInfo",
    "Depends",
    "File",
    "FileInfo",
    "Form",
    "FormInfo",
    "Header",
    "HeaderInfo",
    "ParamInfo",
    "Path",
    "PathInfo",
    "Query",
    "QueryInfo",
    "UploadFile",
]


class ParamInfo(FieldInfo):  # type: ignore[misc]  # FastAPI does the same
    """A parameter's field, with the place of the request it is read from (``source``)."""

    source: ClassVar[str] = "query"

    def __init__(self, *, include_in_schema: bool = True, **kwargs: Any) -> None:
        self.include_in_schema = include_in_schema
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({super().__repr__()})"


class QueryInfo(ParamInfo):  # type: ignore[misc]
    source = "query"


class PathInfo(ParamInfo):  # type: ignore[misc]
    source = "path"


class HeaderInfo(ParamInfo):  # type: ignore[misc]
    source = "header"

    def __init__(self, *, convert_underscores: bool = True, **kwargs: Any) -> None:
        self.convert_underscores = convert_underscores
        super().__init__(**kwargs)


class CookieInfo(ParamInfo):  # type: ignore[misc]
    source = "cookie"


class BodyInfo(ParamInfo):  # type: ignore[misc]
    source = "body"

    def __init__(self, *, embed: bool = False, media_type: str = "application/json",
                 **kwargs: Any) -> None:
        self.embed = embed
        self.media_type = media_type
        super().__init__(**kwargs)


class FormInfo(BodyInfo):  # type: ignore[misc]
    source = "form"

    def __init__(self, *, media_type: str = "application/x-www-form-urlencoded",
                 **kwargs: Any) -> None:
        super().__init__(media_type=media_type, **kwargs)


class FileInfo(FormInfo):  # type: ignore[misc]
    source = "file"

    def __init__(self, *, media_type: str = "multipart/form-data", **kwargs: Any) -> None:
        super().__init__(media_type=media_type, **kwargs)


def _info(cls: type[ParamInfo], default: Any, extra: dict[str, Any], **kwargs: Any) -> Any:
    """Build ``cls`` with only the options given: a ``None`` constraint is no constraint."""
    options = {key: value for key, value in kwargs.items() if value is not None}
    if default is ...:
        default = PydanticUndefined
    return cls(default=default, **extra, **options)


def Query(
    default: Any = PydanticUndefined, *, default_factory: Any = None, alias: str | None = None,
    title: str | None = None, description: str | None = None, gt: float | None = None,
    ge: float | None = None, lt: float | None = None, le: float | None = None,
    multiple_of: float | None = None, min_length: int | None = None,
    max_length: int | None = None, pattern: str | None = None, strict: bool | None = None,
    allow_inf_nan: bool | None = None, examples: list[Any] | None = None,
    deprecated: bool | None = None, include_in_schema: bool = True,
    json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """A parameter read from the query string (repeated keys for a list)."""
    return _info(QueryInfo, default, {"include_in_schema": include_in_schema},
                 default_factory=default_factory, alias=alias, title=title,
                 description=description, gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of,
                 min_length=min_length, max_length=max_length, pattern=pattern, strict=strict,
                 allow_inf_nan=allow_inf_nan, examples=examples, deprecated=deprecated,
                 json_schema_extra=json_schema_extra)


def Path(
    default: Any = PydanticUndefined, *, alias: str | None = None, title: str | None = None,
    description: str | None = None, gt: float | None = None, ge: float | None = None,
    lt: float | None = None, le: float | None = None, multiple_of: float | None = None,
    min_length: int | None = None, max_length: int | None = None, pattern: str | None = None,
    strict: bool | None = None, allow_inf_nan: bool | None = None,
    examples: list[Any] | None = None, deprecated: bool | None = None,
    include_in_schema: bool = True, json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """A parameter read from the route's path (always required)."""
    return _info(PathInfo, default, {"include_in_schema": include_in_schema},
                 alias=alias, title=title, description=description, gt=gt, ge=ge, lt=lt, le=le,
                 multiple_of=multiple_of, min_length=min_length, max_length=max_length,
                 pattern=pattern, strict=strict, allow_inf_nan=allow_inf_nan,
                 examples=examples, deprecated=deprecated, json_schema_extra=json_schema_extra)


def Header(
    default: Any = PydanticUndefined, *, default_factory: Any = None, alias: str | None = None,
    convert_underscores: bool = True, title: str | None = None,
    description: str | None = None, gt: float | None = None, ge: float | None = None,
    lt: float | None = None, le: float | None = None, multiple_of: float | None = None,
    min_length: int | None = None, max_length: int | None = None, pattern: str | None = None,
    strict: bool | None = None, allow_inf_nan: bool | None = None,
    examples: list[Any] | None = None, deprecated: bool | None = None,
    include_in_schema: bool = True, json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """A parameter read from a request header; ``user_agent`` reads ``user-agent`` unless
    ``convert_underscores=False``."""
    return _info(HeaderInfo, default, {"include_in_schema": include_in_schema,
                                       "convert_underscores": convert_underscores},
                 default_factory=default_factory, alias=alias, title=title,
                 description=description, gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of,
                 min_length=min_length, max_length=max_length, pattern=pattern, strict=strict,
                 allow_inf_nan=allow_inf_nan, examples=examples, deprecated=deprecated,
                 json_schema_extra=json_schema_extra)


def Cookie(
    default: Any = PydanticUndefined, *, default_factory: Any = None, alias: str | None = None,
    title: str | None = None, description: str | None = None, gt: float | None = None,
    ge: float | None = None, lt: float | None = None, le: float | None = None,
    multiple_of: float | None = None, min_length: int | None = None,
    max_length: int | None = None, pattern: str | None = None, strict: bool | None = None,
    allow_inf_nan: bool | None = None, examples: list[Any] | None = None,
    deprecated: bool | None = None, include_in_schema: bool = True,
    json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """A parameter read from a cookie."""
    return _info(CookieInfo, default, {"include_in_schema": include_in_schema},
                 default_factory=default_factory, alias=alias, title=title,
                 description=description, gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of,
                 min_length=min_length, max_length=max_length, pattern=pattern, strict=strict,
                 allow_inf_nan=allow_inf_nan, examples=examples, deprecated=deprecated,
                 json_schema_extra=json_schema_extra)


def Body(
    default: Any = PydanticUndefined, *, default_factory: Any = None, embed: bool = False,
    media_type: str = "application/json", alias: str | None = None, title: str | None = None,
    description: str | None = None, gt: float | None = None, ge: float | None = None,
    lt: float | None = None, le: float | None = None, multiple_of: float | None = None,
    min_length: int | None = None, max_length: int | None = None, pattern: str | None = None,
    strict: bool | None = None, allow_inf_nan: bool | None = None,
    examples: list[Any] | None = None, deprecated: bool | None = None,
    include_in_schema: bool = True, json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """A parameter read from the JSON body: the whole body, or its key named after the
    parameter when the handler has several body parameters or ``embed=True``."""
    return _info(BodyInfo, default, {"include_in_schema": include_in_schema, "embed": embed,
                                     "media_type": media_type},
                 default_factory=default_factory, alias=alias, title=title,
                 description=description, gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of,
                 min_length=min_length, max_length=max_length, pattern=pattern, strict=strict,
                 allow_inf_nan=allow_inf_nan, examples=examples, deprecated=deprecated,
                 json_schema_extra=json_schema_extra)


def Form(
    default: Any = PydanticUndefined, *, default_factory: Any = None,
    media_type: str = "application/x-www-form-urlencoded", alias: str | None = None,
    title: str | None = None, description: str | None = None, gt: float | None = None,
    ge: float | None = None, lt: float | None = None, le: float | None = None,
    multiple_of: float | None = None, min_length: int | None = None,
    max_length: int | None = None, pattern: str | None = None, strict: bool | None = None,
    allow_inf_nan: bool | None = None, examples: list[Any] | None = None,
    deprecated: bool | None = None, include_in_schema: bool = True,
    json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """A field of a form body (urlencoded or multipart), parsed by Starlette."""
    return _info(FormInfo, default, {"include_in_schema": include_in_schema,
                                     "media_type": media_type},
                 default_factory=default_factory, alias=alias, title=title,
                 description=description, gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of,
                 min_length=min_length, max_length=max_length, pattern=pattern, strict=strict,
                 allow_inf_nan=allow_inf_nan, examples=examples, deprecated=deprecated,
                 json_schema_extra=json_schema_extra)


def File(
    default: Any = PydanticUndefined, *, default_factory: Any = None,
    media_type: str = "multipart/form-data", alias: str | None = None,
    title: str | None = None, description: str | None = None,
    min_length: int | None = None, max_length: int | None = None,
    examples: list[Any] | None = None, deprecated: bool | None = None,
    include_in_schema: bool = True, json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    """An uploaded file of a multipart body, as ``bytes`` or :class:`UploadFile`."""
    return _info(FileInfo, default, {"include_in_schema": include_in_schema,
                                     "media_type": media_type},
                 default_factory=default_factory, alias=alias, title=title,
                 description=description, min_length=min_length, max_length=max_length,
                 examples=examples, deprecated=deprecated, json_schema_extra=json_schema_extra)
