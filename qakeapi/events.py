"""Application events: ``app.on(pattern)`` registers listeners, ``await app.emit(name, data)``
calls every matching one.

Patterns are exact names (``"task:failed"``), prefixes (``"task:*"``), ``"*"`` or any
``fnmatch`` pattern. Listeners may be sync or async and take ``(data)`` or ``(name, data)``.
A failing listener is logged with its traceback and never breaks the emitter or the others.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .core._isolation import is_cancellation

__all__ = ["EventBus"]

logger = logging.getLogger("qakeapi.events")

Listener = Callable[..., Any]
F = TypeVar("F", bound=Listener)


def _takes_name(fn: Listener) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _matches(pattern: str, name: str) -> bool:
    if pattern == "*" or pattern == name:
        return True
    if "*" not in pattern and "?" not in pattern and "[" not in pattern:
        return False
    return fnmatch.fnmatchcase(name, pattern)


class EventBus:
    """Listeners by pattern, with a per-name cache of who matches."""

    def __init__(self) -> None:
        self._listeners: list[tuple[str, Listener, bool]] = []
        self._cache: dict[str, tuple[tuple[Listener, bool], ...]] = {}
        self.active = False
        """Whether any listener is registered (hot paths read this before anything else)."""

    def on(self, pattern: str) -> Callable[[F], F]:
        """Decorator: ``@bus.on("task:failed")``."""

        def decorator(fn: F) -> F:
            self.add_listener(pattern, fn)
            return fn

        return decorator

    def add_listener(self, pattern: str, fn: Listener) -> None:
        if not callable(fn):
            raise TypeError(f"event listener for {pattern!r} must be callable, got {fn!r}")
        self._listeners.append((pattern, fn, _takes_name(fn)))
        self._cache.clear()
        self.active = True

    def remove_listener(self, pattern: str, fn: Listener) -> None:
        before = len(self._listeners)
        self._listeners = [
            entry for entry in self._listeners if not (entry[0] == pattern and entry[1] is fn)
        ]
        if len(self._listeners) == before:
            raise ValueError(f"{fn!r} is not listening to {pattern!r}")
        self._cache.clear()
        self.active = bool(self._listeners)

    def _matching(self, name: str) -> tuple[tuple[Listener, bool], ...]:
        found = self._cache.get(name)
        if found is None:
            found = tuple(
                (fn, takes_name) for pattern, fn, takes_name in self._listeners
                if _matches(pattern, name)
            )
            self._cache[name] = found
        return found

    def has_listeners(self, name: str) -> bool:
        if not self._listeners:
            return False
        return bool(self._matching(name))

    async def emit(self, name: str, data: Any = None) -> None:
        """Call every listener matching ``name``; failures are logged, never raised."""
        for fn, takes_name in self._matching(name):
            try:
                result = fn(name, data) if takes_name else fn(data)
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:  # SystemExit from a listener must not end the emitter
                if is_cancellation(exc):
                    raise
                logger.exception("event listener %r for %r failed", fn, name)
