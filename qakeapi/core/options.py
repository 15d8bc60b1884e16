"""Checks of task options and settings, shared by background tasks, queued tasks and every
backend: a bad value is refused where it is given, with a TypeError (wrong type) or a
ValueError (out of range) that names it, before anything is stored or started.

Each check returns the value to use (numbers normalised to ``int``/``float``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from ..constants import (
    OPTION_MAX_KEY_CHARS,
    OPTION_MAX_RETRIES,
    OPTION_MAX_SECONDS,
    PRIORITY_MAX,
    PRIORITY_MIN,
)

__all__ = [
    "check_count",
    "check_flag",
    "check_key",
    "check_priority",
    "check_seconds",
    "check_task_kwargs",
]


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def check_seconds(name: str, value: object, *, maximum: float = OPTION_MAX_SECONDS) -> float:
    """A finite number of seconds from 0 to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= maximum:
        raise ValueError(f"{name} must be a finite number of seconds from 0 to {maximum:,.0f}, "
                         f"got {value!r}")
    return seconds


def check_count(name: str, value: object, *, minimum: int = 0,
                maximum: int = OPTION_MAX_RETRIES) -> int:
    """An int from ``minimum`` to ``maximum`` (``bool`` is not an int here)."""
    count = _integer(name, value)
    if not minimum <= count <= maximum:
        raise ValueError(f"{name} must be from {minimum} to {maximum}, got {value!r}")
    return count


def check_priority(value: object) -> int:
    return check_count("priority", value, minimum=PRIORITY_MIN, maximum=PRIORITY_MAX)


def check_key(name: str, value: object) -> str:
    """A non-empty string of at most OPTION_MAX_KEY_CHARS characters that every backend can
    store (encodable as UTF-8)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not value or len(value) > OPTION_MAX_KEY_CHARS:
        raise ValueError(f"{name} must be 1 to {OPTION_MAX_KEY_CHARS} characters, "
                         f"got {len(value)}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid text (it can't be encoded as UTF-8): "
                         f"{value!r}") from None
    return value


def check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_task_kwargs(value: object) -> dict[str, Any]:
    """``task_kwargs``: a mapping of keyword argument names to values."""
    if not isinstance(value, Mapping):
        raise TypeError(f"task_kwargs must be a mapping of argument names, got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"task_kwargs keys must be argument names (str), got {key!r}")
    return dict(value)
