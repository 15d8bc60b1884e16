"""Per-task context and logs: ``set_context``, ``get_context``, ``getLogger``.

While a queued task runs, a :class:`TaskContext` is current (a context variable). Context
values are dotted keys into a nested dict; log lines from loggers obtained through
:func:`getLogger` are kept too (the most recent ``TASK_LOG_LINES``). The worker stores both
with the task while it runs (:meth:`TaskContext.save`) and with its outcome, so they survive
retries.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import anyio

from ..constants import TASK_LOG_LINE_CHARS, TASK_LOG_LINES

__all__ = ["ContextSaver", "TaskContext", "current_task", "getLogger", "get_context",
           "set_context"]

_MISSING: Any = object()

ContextSaver = Callable[[dict[str, Any], list[str]], Awaitable[None]]
"""Stores a running task's context and log lines (the worker's ``storage.save_progress``)."""


class TaskContext:
    """The running task's context dict and log lines."""

    __slots__ = ("_saving", "data", "dirty", "logs", "on_change", "saver", "task_id")

    def __init__(self, task_id: str, data: dict[str, Any] | None = None,
                 logs: list[str] | None = None,
                 on_change: Callable[[], None] | None = None,
                 saver: ContextSaver | None = None) -> None:
        self.task_id = task_id
        self.data: dict[str, Any] = data if data is not None else {}
        self.logs: list[str] = logs if logs is not None else []
        self.dirty = False
        self.on_change = on_change
        self.saver = saver
        self._saving: anyio.Lock | None = None

    async def save(self) -> None:
        """Store what changed since the last save; when it returns, every change made before
        the call is stored. Saves run one at a time, so an older copy never lands after a
        newer one. On failure the context stays changed (the next save retries) and the
        error is raised."""
        if self.saver is None:
            return
        if self._saving is None:
            self._saving = anyio.Lock()
        async with self._saving:
            if not self.dirty:
                return
            self.dirty = False
            try:
                await self.saver(copy.deepcopy(self.data), list(self.logs))
            except BaseException:
                self.dirty = True
                raise

    def _changed(self) -> None:
        if not self.dirty:
            self.dirty = True
            if self.on_change is not None:
                self.on_change()

    def set(self, key: str, value: Any) -> None:
        parts = _split(key)
        node = self.data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
        self._changed()

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in _split(key):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def add_log(self, line: str) -> None:
        if len(line) > TASK_LOG_LINE_CHARS:
            line = line[: TASK_LOG_LINE_CHARS - 1] + "…"
        self.logs.append(line)
        if len(self.logs) > TASK_LOG_LINES:
            del self.logs[: len(self.logs) - TASK_LOG_LINES]
        self._changed()


def _split(key: str) -> list[str]:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ValueError(f"context key must be a non-empty dotted name like 'a.b', got {key!r}")
    return key.split(".")


current_task: ContextVar[TaskContext | None] = ContextVar("qakeapi_current_task", default=None)


def set_context(key: str, value: Any) -> None:
    """Store ``value`` under the dotted ``key`` in the running task's context."""
    ctx = current_task.get()
    if ctx is None:
        raise RuntimeError("set_context() works only inside a running queued task")
    ctx.set(key, value)


def get_context(key: str, default: Any = None) -> Any:
    """The running task's value at dotted ``key`` (``default`` if unset or outside a task)."""
    ctx = current_task.get()
    if ctx is None:
        return default
    return ctx.get(key, default)


class _TaskLogHandler(logging.Handler):
    """Copies records into the running task's log (does nothing outside a task)."""

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current_task.get()
        if ctx is None:
            return
        try:
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            ctx.add_log(f"{when} {record.levelname} {record.name}: {record.getMessage()}")
        except Exception:
            self.handleError(record)


def getLogger(name: str | None = None) -> logging.Logger:
    """A standard logger whose records are also stored with the running task.

    Only the returned logger is changed (one handler added; level set to INFO when unset)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, _TaskLogHandler) for h in logger.handlers):
        logger.addHandler(_TaskLogHandler())
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger
