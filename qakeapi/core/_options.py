"""Checks of task options and settings, shared by background tasks, queued tasks and every
backend: a bad value is refused where it is given, with a TypeError (wrong type) or a
ValueError (out of range) that names it, before anything is stored or started.

Each check returns the value to use (numbers normalised to ``int``/``float``).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..constants import (
    OPTION_MAX_KEY_CHARS,
    OPTION_MAX_RETRIES,
    OPTION_MAX_SECONDS,
    PRIORITY_MAX,
    PRIORITY_MIN,
)

__all__ = [
    "NO_EXCEPTIONS",
    "NO_OPTIONS",
    "NO_RETRIES",
    "TaskOptions",
    "check_count",
    "check_exception_classes",
    "check_flag",
    "check_key",
    "check_priority",
    "check_seconds",
    "check_task_kwargs",
    "check_task_options",
    "task_options",
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


def check_exception_classes(name: str, value: object) -> tuple[type[BaseException], ...]:
    """An exception class, or an iterable of them, as a tuple (``no_retry_on``)."""
    if isinstance(value, str | bytes) or not isinstance(value, type | Iterable):
        raise TypeError(f"{name} must be an exception class or a tuple of them, got {value!r}")
    classes = (value,) if isinstance(value, type) else tuple(value)
    for item in classes:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{name} must hold exception classes, got {item!r}")
    return classes


NO_RETRIES: Final = 0
"""``max_retries``' default: ``max_retries is NO_RETRIES`` tells a call that gave no retries
without a check (``False`` or ``0.0`` are other objects, and get checked)."""
NO_EXCEPTIONS: Final[tuple[type[BaseException], ...]] = ()
"""``no_retry_on``'s default."""


@dataclass(slots=True, frozen=True)
class TaskOptions:
    """The checked options of one background task."""

    timeout: float | None = None
    """Seconds per attempt; None for no deadline (``timeout=0`` is stored as None)."""
    max_retries: int = 0
    no_retry_on: tuple[type[BaseException], ...] = ()
    """Exceptions that fail the task at once, whatever retries are left."""
    task_kwargs: dict[str, Any] | None = None
    """The task's own keyword arguments named like options."""


NO_OPTIONS: Final = TaskOptions()


def check_task_options(*, timeout: object, max_retries: object, no_retry_on: object,
                       task_kwargs: object, retries: object) -> TaskOptions:
    """The options of ``add_task``/``add_background_task`` (``retries`` is the deprecated
    alias of ``max_retries``; its warning points at the code that called either)."""
    if retries is not None:
        if max_retries is not NO_RETRIES:
            raise TypeError("give max_retries or its deprecated alias retries, not both")
        warnings.warn("the background task option retries is deprecated: use max_retries, "
                      "the name queued tasks use", DeprecationWarning, stacklevel=4)
        max_retries = check_count("retries", retries)
    return TaskOptions(
        timeout=None if timeout is None else check_seconds("timeout", timeout) or None,
        max_retries=check_count("max_retries", max_retries),
        no_retry_on=(NO_EXCEPTIONS if no_retry_on is NO_EXCEPTIONS
                     else check_exception_classes("no_retry_on", no_retry_on)),
        task_kwargs=None if task_kwargs is None else check_task_kwargs(task_kwargs),
    )


def task_options(timeout: object, max_retries: object, no_retry_on: object,
                 task_kwargs: object, retries: object) -> TaskOptions:
    """The checked options of one ``add_task``/``add_background_task`` call, given as their
    parameters: the shared :data:`NO_OPTIONS` at once for a call that gave none (the common
    one, checked by identity), else :func:`check_task_options`."""
    if (timeout is None and max_retries is NO_RETRIES and task_kwargs is None
            and retries is None and no_retry_on is NO_EXCEPTIONS):
        return NO_OPTIONS
    return check_task_options(timeout=timeout, max_retries=max_retries,
                              no_retry_on=no_retry_on, task_kwargs=task_kwargs,
                              retries=retries)
