"""Exceptions raised by qakeapi.

Hierarchy::

    QakeAPIError
    ├── HTTPException                 (also starlette.exceptions.HTTPException)
    │   └── RequestValidationError    422: invalid parameters, in FastAPI's shape
    ├── TaskNotFound                  (also KeyError)
    ├── TaskWaitTimeout               (also TimeoutError)
    ├── TaskFailedError               result() of a failed task
    ├── TaskCancelledError            result() of a cancelled task
    ├── ManagerNotRunning             (also RuntimeError)
    ├── TooManyPendingTasks           (also RuntimeError) a request holds too many tasks
    └── QueueError
        ├── ConfigurationError        (also ValueError) bad QUEUE_URL, bad setting
        ├── SerializationError        (also TypeError) an argument or result that can't be stored
        ├── TaskNotRegistered         a function a worker may not or cannot run
        ├── MissingParentError        (also KeyError) parent= names no task
        ├── BackendUnavailable        (also ConnectionError) backend unreachable / unusable
        ├── CorruptTaskError          a stored task that can't be decoded
        └── InvalidCursor             (also ValueError) a page cursor this listing can't use

Control flow inside a queued task (not errors)::

    Retry(delay=None)                 ask for another attempt after ``delay`` seconds
    NoRetry                           fail now, whatever retries are left
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException as _StarletteHTTPException

from .core._options import check_seconds

__all__ = [
    "BackendUnavailable",
    "ConfigurationError",
    "CorruptTaskError",
    "HTTPException",
    "InvalidCursor",
    "ManagerNotRunning",
    "MissingParentError",
    "NoRetry",
    "QakeAPIError",
    "QueueError",
    "RequestValidationError",
    "Retry",
    "SerializationError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskNotFound",
    "TaskNotRegistered",
    "TaskWaitTimeout",
    "TooManyPendingTasks",
]


class QakeAPIError(Exception):
    """Base class of every qakeapi error."""


class HTTPException(_StarletteHTTPException, QakeAPIError):
    """Raise in a handler to answer with ``status_code`` and ``{"detail": detail}``."""

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)


class RequestValidationError(HTTPException):
    """422: request parameters that could not be filled; ``errors`` (and ``detail``) list
    them in FastAPI's shape, ``{"loc": [...], "msg": ..., "type": ..., "input": ...}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, errors)
        self.errors = errors


class TaskNotFound(QakeAPIError, KeyError):
    """No task has this id (or its record was evicted after retention)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"no task with id {self.task_id!r}"


class TaskWaitTimeout(QakeAPIError, TimeoutError):
    """``wait(id, timeout)`` ran out of time before the task finished."""


class TaskFailedError(QakeAPIError):
    """The task failed; ``.record`` holds the error."""

    def __init__(self, message: str, record: Any = None) -> None:
        super().__init__(message)
        self.record = record


class TaskCancelledError(QakeAPIError):
    """The task was cancelled; ``.record`` holds the reason."""

    def __init__(self, message: str, record: Any = None) -> None:
        super().__init__(message)
        self.record = record


class ManagerNotRunning(QakeAPIError, RuntimeError):
    """The background task manager is not started (run inside the app or ``async with``)."""


class TooManyPendingTasks(QakeAPIError, RuntimeError):
    """A request's held background tasks would take the manager past ``max_pending``.

    Raised by ``add_background_task`` inside a request; left unhandled it answers 503 and
    the request's held tasks are dropped, as for any handler error."""


class QueueError(QakeAPIError):
    """Base class of queued-task errors."""


class ConfigurationError(QueueError, ValueError):
    """A setting or QUEUE_URL that can't be used."""


class SerializationError(QueueError, TypeError):
    """A task argument or result that can't be stored as JSON data."""


class TaskNotRegistered(QueueError):
    """A task name that this worker doesn't know or is not allowed to run."""


class MissingParentError(QueueError, KeyError):
    """``parent=`` names a task that doesn't exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "missing parent"


class BackendUnavailable(QueueError, ConnectionError):
    """The queue backend can't be reached or used (server down, bad file, wrong password)."""


class CorruptTaskError(QueueError):
    """A stored task that can't be decoded."""


class InvalidCursor(QueueError, ValueError):
    """A page cursor that is garbage, was altered, or belongs to another listing (another
    backend or other filters). Start again from the first page."""


class Retry(Exception):
    """Raise inside a task (queued or background) to ask for another attempt after ``delay`` s.

    Counts as an attempt; when no retries are left the task fails.
    """

    def __init__(self, delay: float | None = None, reason: str = "") -> None:
        if delay is not None:
            delay = check_seconds("Retry(delay=...)", delay)
        super().__init__(reason or f"retry requested (delay={delay})")
        self.delay = delay


class NoRetry(Exception):
    """Raise (or raise ``from`` the cause) to fail the task now without retrying."""
