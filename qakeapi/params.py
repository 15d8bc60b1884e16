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

from typing import Any, ClassVar, TypedDict, Unpack

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


class _FileOptions(TypedDict, total=False):
    """The keyword options every marker takes (``File``'s whole set)."""

    alias: str | None
    title: str | None
    description: str | None
    min_length: int | None
    max_length: int | None
    examples: list[Any] | None
    deprecated: bool | None
    include_in_schema: bool
    json_schema_extra: dict[str, Any] | None


class _FieldOptions(_FileOptions, total=False):
    """The keyword options of the markers of values: Pydantic's constraints besides."""

    gt: float | None
    ge: float | None
    lt: float | None
    le: float | None
    multiple_of: float | None
    pattern: str | None
    strict: bool | None
    allow_inf_nan: bool | None


def _info(cls: type[ParamInfo], default: Any, allowed: type[_FileOptions],
          options: dict[str, Any], **fixed: Any) -> Any:
    """Build ``cls`` with only the options given (a ``None`` constraint is no constraint);
    TypeError for an option the marker does not take."""
    unknown = sorted(set(options) - set(allowed.__annotations__))
    if unknown:
        raise TypeError(f"{cls.__name__.removesuffix('Info')}() got unexpected keyword "
                        f"argument(s): {', '.join(unknown)}")
    given = {key: value for key, value in {**fixed, **options}.items() if value is not None}
    if default is ...:
        default = PydanticUndefined
    return cls(default=default, **given)


def Query(default: Any = PydanticUndefined, *, default_factory: Any = None,
          **options: Unpack[_FieldOptions]) -> Any:
    """A parameter read from the query string (repeated keys for a list)."""
    return _info(QueryInfo, default, _FieldOptions, dict(options),
                 default_factory=default_factory)


def Path(default: Any = PydanticUndefined, **options: Unpack[_FieldOptions]) -> Any:
    """A parameter read from the route's path (always required)."""
    return _info(PathInfo, default, _FieldOptions, dict(options))


def Header(default: Any = PydanticUndefined, *, default_factory: Any = None,
           convert_underscores: bool = True, **options: Unpack[_FieldOptions]) -> Any:
    """A parameter read from a request header; ``user_agent`` reads ``user-agent`` unless
    ``convert_underscores=False``."""
    return _info(HeaderInfo, default, _FieldOptions, dict(options),
                 default_factory=default_factory, convert_underscores=convert_underscores)


def Cookie(default: Any = PydanticUndefined, *, default_factory: Any = None,
           **options: Unpack[_FieldOptions]) -> Any:
    """A parameter read from a cookie."""
    return _info(CookieInfo, default, _FieldOptions, dict(options),
                 default_factory=default_factory)


def Body(default: Any = PydanticUndefined, *, default_factory: Any = None, embed: bool = False,
         media_type: str = "application/json", **options: Unpack[_FieldOptions]) -> Any:
    """A parameter read from the JSON body: the whole body, or its key named after the
    parameter when the handler has several body parameters or ``embed=True``."""
    return _info(BodyInfo, default, _FieldOptions, dict(options),
                 default_factory=default_factory, embed=embed, media_type=media_type)


def Form(default: Any = PydanticUndefined, *, default_factory: Any = None,
         media_type: str = "application/x-www-form-urlencoded",
         **options: Unpack[_FieldOptions]) -> Any:
    """A field of a form body (urlencoded or multipart), parsed by Starlette."""
    return _info(FormInfo, default, _FieldOptions, dict(options),
                 default_factory=default_factory, media_type=media_type)


def File(default: Any = PydanticUndefined, *, default_factory: Any = None,
         media_type: str = "multipart/form-data", **options: Unpack[_FileOptions]) -> Any:
    """An uploaded file of a multipart body, as ``bytes`` or :class:`UploadFile`."""
    return _info(FileInfo, default, _FileOptions, dict(options),
                 default_factory=default_factory, media_type=media_type)
