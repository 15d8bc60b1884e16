"""Value objects shared by every task path: statuses, records, outcomes.

One task model serves in-process background tasks and queued tasks alike:

    pending ──▶ running ──▶ succeeded | failed | cancelled
       ▲           │
       └─ retry at ┘   (a failed attempt with retries left)

Terminal states are final.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
import traceback as _traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .constants import MAX_JSON_DEPTH

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "EventListener",
    "JSONValue",
    "QueueStats",
    "TaskErrorInfo",
    "TaskOutcome",
    "TaskPage",
    "TaskRecord",
    "TaskStatus",
    "WorkerInfo",
]

JSONValue: TypeAlias = Any
"""A value made of dict/list/str/int/float/bool/None (and, for queued tasks,
datetime, date, UUID, Decimal and bytes, which the codec tags)."""

EventListener: TypeAlias = Callable[[str, Any], "Awaitable[None] | None"]


class TaskStatus(str, enum.Enum):
    """The state of a task. Defined once; the sets below are the only groupings."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:
        # Hash like the plain string, so ``counts["pending"]`` finds ``TaskStatus.PENDING``.
        return str.__hash__(self)

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: frozenset[TaskStatus] = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
ACTIVE_STATUSES: frozenset[TaskStatus] = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})
_STATUS_VALUES = frozenset(s.value for s in TaskStatus)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat()


_INT_LIMIT = 2**63 - 1
_TIMESTAMP_RANGE = (-62_135_596_800.0, 253_402_300_799.0)
"""Years 1 to 9999: the times ``datetime`` can show."""
_MISSING = object()
_CONTAINERS = (dict, list, tuple)
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")


def _kind(value: Any) -> str:
    return type(value).__name__


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be text, got a {_kind(value)}")
    try:
        value.isascii() or value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} is not valid UTF-8") from None
    return value


def _opt_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _integer(value: Any, field: str) -> int:
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{field} must be an integer, got a {_kind(value)}")
    if abs(value) > _INT_LIMIT:
        raise ValueError(f"{field} is out of range")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value) if len(value) <= 64 else None
        except ValueError:
            raise TypeError(f"{field} must be a number, got text") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{field} must be a number, got a {_kind(value)}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{field} must be a finite number")
    return number


def _opt_number(value: Any, field: str) -> float | None:
    return None if value is None else _number(value, field)


def _opt_time(value: Any, field: str) -> float | None:
    if value is None:
        return None
    ts = _number(value, field)
    if not _TIMESTAMP_RANGE[0] <= ts <= _TIMESTAMP_RANGE[1]:
        raise ValueError(f"{field} is not a time between the years 1 and 9999")
    return ts


def _flag(value: Any, field: str) -> bool:
    if value in (True, False, 0, 1, "0", "1", ""):
        return value not in (False, 0, "0", "")
    raise TypeError(f"{field} must be a flag (0 or 1), got a {_kind(value)}")


def _nested(value: Any, field: str) -> Any:
    """``value`` unchanged, if its lists/dicts nest at most MAX_JSON_DEPTH deep."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"{field} is nested more than {MAX_JSON_DEPTH} levels deep")
        level = [child for item in level
                 for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, _CONTAINERS)]
    return value


def _json_list(value: Any, field: str) -> list[Any]:
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise TypeError(f"{field} must be a list, got a {_kind(value)}")
    return _nested(value, field)  # type: ignore[no-any-return]


def _json_dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{field} must be an object, got a {_kind(value)}")
    for key in value:
        _text(key, f"a key of {field}")
    return _nested(dict(value), field)  # type: ignore[no-any-return]


def _text_list(value: Any, field: str) -> list[str]:
    items = _json_list(value, field)
    for item in items:
        _text(item, f"an item of {field}")
    return items


def _get(data: Mapping[str, Any], key: str, default: Any = _MISSING) -> Any:
    value = data.get(key)
    if value is None:
        if default is _MISSING:
            raise ValueError(f"{key} is missing")
        return default
    return value


@dataclass(slots=True, frozen=True)
class TaskErrorInfo:
    """Why an attempt failed: exception type, message and formatted traceback."""

    type: str
    message: str
    traceback: str = ""
    timed_out: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException, *, timed_out: bool = False) -> TaskErrorInfo:
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            type=type(exc).__qualname__, message=str(exc), traceback=tb, timed_out=timed_out
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "timed_out": self.timed_out,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskErrorInfo:
        """Inverse of ``to_dict``; ValueError/TypeError naming the bad field."""
        if not isinstance(data, Mapping):
            raise TypeError(f"error must be an object, got a {_kind(data)}")
        return cls(
            type=_text(_get(data, "type", ""), "error.type"),
            message=_text(_get(data, "message", ""), "error.message"),
            traceback=_text(_get(data, "traceback", ""), "error.traceback"),
            timed_out=_flag(_get(data, "timed_out", False), "error.timed_out"),
        )


@dataclass(slots=True, eq=False)
class TaskRecord:
    """Everything known about one task.

    Times are UNIX timestamps (seconds, float). For queued tasks ``args``/``kwargs``
    hold the *encoded* JSON form (see ``qakeapi.queued_tasks._serialization``);
    for in-process background tasks they are the Python objects themselves.
    """

    id: str
    name: str
    status: TaskStatus = TaskStatus.PENDING
    args: Any = ()
    kwargs: Any = field(default_factory=dict)
    attempts: int = 0
    max_retries: int = 0
    timeout: float | None = None
    priority: int = 0
    result: Any = None
    error: TaskErrorInfo | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    run_at: float | None = None
    """When a pending task becomes due (delay or retry time); None = now."""
    parents: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    logs: Sequence[str] = ()
    unique_key: str | None = None
    worker_id: str | None = None
    lease_expires_at: float | None = None
    cancel_reason: str | None = None
    cancel_requested: bool = False
    auto_remove: bool = False
    """Delete the record when the task succeeds (unless other tasks depend on it)."""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.timed_out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the form stored by durable backends and printed by --json)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "args": list(self.args) if isinstance(self.args, tuple) else self.args,
            "kwargs": self.kwargs,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "priority": self.priority,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "run_at": self.run_at,
            "parents": list(self.parents),
            "context": self.context,
            "logs": list(self.logs),
            "unique_key": self.unique_key,
            "worker_id": self.worker_id,
            "lease_expires_at": self.lease_expires_at,
            "cancel_reason": self.cancel_reason,
            "cancel_requested": self.cancel_requested,
            "auto_remove": self.auto_remove,
        }

    def to_public_dict(self) -> dict[str, Any]:
        """``to_dict`` with ISO-8601 times, for people and HTTP APIs."""
        data = self.to_dict()
        for key in ("created_at", "started_at", "finished_at", "run_at", "lease_expires_at"):
            data[key] = _iso(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRecord:
        """Inverse of ``to_dict``, checking every field: a ValueError or TypeError names
        the first one that is missing or of the wrong kind (a corrupt row)."""
        status = _text(_get(data, "status"), "status")
        if status not in _STATUS_VALUES:
            raise ValueError(f"status {status[:40]!a} is not a task status")
        error = data.get("error")
        return cls(
            id=_text(_get(data, "id"), "id"),
            name=_text(_get(data, "name"), "name"),
            status=TaskStatus(status),
            args=_json_list(_get(data, "args", []), "args"),
            kwargs=_json_dict(_get(data, "kwargs", {}), "kwargs"),
            attempts=_integer(_get(data, "attempts", 0), "attempts"),
            max_retries=_integer(_get(data, "max_retries", 0), "max_retries"),
            timeout=_opt_number(data.get("timeout"), "timeout"),
            priority=_integer(_get(data, "priority", 0), "priority"),
            result=_nested(data.get("result"), "result"),
            error=None if error is None else TaskErrorInfo.from_dict(error),
            created_at=_opt_time(_get(data, "created_at", 0.0), "created_at") or 0.0,
            started_at=_opt_time(data.get("started_at"), "started_at"),
            finished_at=_opt_time(data.get("finished_at"), "finished_at"),
            run_at=_opt_time(data.get("run_at"), "run_at"),
            parents=tuple(_text_list(_get(data, "parents", []), "parents")),
            context=_json_dict(_get(data, "context", {}), "context"),
            logs=_text_list(_get(data, "logs", []), "logs"),
            unique_key=_opt_text(data.get("unique_key"), "unique_key"),
            worker_id=_opt_text(data.get("worker_id"), "worker_id"),
            lease_expires_at=_opt_time(data.get("lease_expires_at"), "lease_expires_at"),
            cancel_reason=_opt_text(data.get("cancel_reason"), "cancel_reason"),
            cancel_requested=_flag(_get(data, "cancel_requested", False), "cancel_requested"),
            auto_remove=_flag(_get(data, "auto_remove", False), "auto_remove"),
        )


@dataclass(slots=True)
class TaskOutcome:
    """What a worker reports for one claimed task.

    ``status`` is SUCCEEDED, FAILED or CANCELLED for a final outcome, or PENDING
    for "retry later" (then ``run_at`` is the retry time and ``error`` the failure).
    """

    id: str
    status: TaskStatus
    result: Any = None
    error: TaskErrorInfo | None = None
    run_at: float | None = None
    context: dict[str, Any] | None = None
    logs: list[str] | None = None
    cancel_reason: str | None = None


@dataclass(slots=True)
class WorkerInfo:
    """A live worker, as shown by ``qakeapi queue status``."""

    id: str
    hostname: str
    pid: int
    concurrency: int
    started_at: float
    last_heartbeat: float
    running: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hostname": self.hostname,
            "pid": self.pid,
            "concurrency": self.concurrency,
            "started_at": self.started_at,
            "last_heartbeat": self.last_heartbeat,
            "running": self.running,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerInfo:
        return cls(
            id=str(data["id"]),
            hostname=str(data.get("hostname", "")),
            pid=int(data.get("pid", 0)),
            concurrency=int(data.get("concurrency", 0)),
            started_at=float(data.get("started_at", 0.0)),
            last_heartbeat=float(data.get("last_heartbeat", 0.0)),
            running=int(data.get("running", 0)),
        )


@dataclass(slots=True)
class QueueStats:
    """Counts by state plus the age of the oldest due pending task."""

    counts: dict[TaskStatus, int]
    oldest_pending_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": {s.value: self.counts.get(s, 0) for s in TaskStatus},
            "oldest_pending_at": self.oldest_pending_at,
        }


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a queue's task list, newest first, and the cursors to its neighbours.

    A cursor is an opaque string holding only a position in the list (never task data); pass
    it back to the same listing (same backend and filters) to get the page next to it.
    """

    records: list[TaskRecord]
    older: str | None = None
    """Cursor of the page after this one (older tasks), or None when this is the last."""
    newer: str | None = None
    """Cursor of the page before this one (newer tasks), or None on the first page."""
