"""Task arguments and results as JSON data, plus datetime, date, UUID, Decimal and bytes.

Extra types are stored as tagged objects (``{"__qk__": "datetime", "v": "..."}``) and come
back as the same type. Anything else is refused when the task is added, with an error that
names the argument, so every backend (memory included) accepts exactly the same values.
No pickle.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..constants import MAX_JSON_DEPTH
from ..exceptions import SerializationError

__all__ = ["decode", "dumps", "encode", "encode_call", "loads"]

TAG = "__qk__"
_PLAIN = (str, int, float, bool, type(None))


def _encode(value: Any, path: str, depth: int = 1) -> Any:
    if isinstance(value, _PLAIN):
        if isinstance(value, float) and value != value:  # NaN is not JSON
            raise SerializationError(f"{path}: NaN can't be stored as JSON")
        return value
    if depth > MAX_JSON_DEPTH and isinstance(value, (dict, list, tuple)):
        where = path if len(path) <= 80 else f"{path[:60]}...{path[-12:]}"
        raise SerializationError(
            f"{where}: lists and dicts nested more than {MAX_JSON_DEPTH} levels deep can't "
            f"be stored")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{path}: dict key {key!r} is a {type(key).__name__}; only str keys can "
                    f"be stored"
                )
            out[key] = _encode(item, f"{path}[{key!r}]", depth + 1)
        if TAG in out:
            raise SerializationError(f"{path}: the key {TAG!r} is reserved")
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    raise SerializationError(
        f"{path}: a {type(value).__module__}.{type(value).__qualname__} can't be stored; "
        f"queued tasks take JSON data (dict, list, str, int, float, bool, None) and "
        f"datetime, date, UUID, Decimal, bytes — pass an id or a dict instead"
    )


def encode(value: Any, path: str = "value") -> Any:
    """``value`` as JSON-ready data; SerializationError naming ``path`` if impossible."""
    return _encode(value, path)


def encode_call(
    fn_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Encode a task's arguments; errors name the argument (``argument 'items[2]' of f``)."""
    enc_args = [_encode(a, f"positional argument {i} of {fn_name}", 2)
                for i, a in enumerate(args)]
    enc_kwargs = {k: _encode(v, f"argument {k!r} of {fn_name}", 2) for k, v in kwargs.items()}
    return enc_args, enc_kwargs


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        tag = value.get(TAG)
        if tag is None:
            return {key: decode(item) for key, item in value.items()}
        raw = str(value.get("v", ""))
        if tag == "datetime":
            return dt.datetime.fromisoformat(raw)
        if tag == "date":
            return dt.date.fromisoformat(raw)
        if tag == "uuid":
            return uuid.UUID(raw)
        if tag == "decimal":
            return Decimal(raw)
        if tag == "bytes":
            return base64.b64decode(raw)
        raise ValueError(f"unknown tagged value {tag!r}")
    return value


def dumps(value: Any) -> str:
    """Compact JSON text of already-encoded data."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)
