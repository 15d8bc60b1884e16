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
import traceback as _traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "EventListener",
    "JSONValue",
    "QueueStats",
    "TaskErrorInfo",
    "TaskOutcome",
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


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat()


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
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
            timed_out=bool(data.get("timed_out", False)),
        )


@dataclass(slots=True, eq=False)
class TaskRecord:
    """Everything known about one task.

    Times are UNIX timestamps (seconds, float). For queued tasks ``args``/``kwargs``
    hold the *encoded* JSON form (see ``qakeapi.queued_tasks.serialization``);
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
        }

    def to_public_dict(self) -> dict[str, Any]:
        """``to_dict`` with ISO-8601 times, for people and HTTP APIs."""
        data = self.to_dict()
        for key in ("created_at", "started_at", "finished_at", "run_at", "lease_expires_at"):
            data[key] = _iso(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRecord:
        """Inverse of ``to_dict``. Raises ``KeyError``/``ValueError`` on a corrupt dict."""
        error = data.get("error")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            status=TaskStatus(data["status"]),
            args=list(data.get("args") or []),
            kwargs=dict(data.get("kwargs") or {}),
            attempts=int(data.get("attempts", 0)),
            max_retries=int(data.get("max_retries", 0)),
            timeout=data.get("timeout"),
            priority=int(data.get("priority", 0)),
            result=data.get("result"),
            error=TaskErrorInfo.from_dict(error) if error else None,
            created_at=float(data.get("created_at", 0.0)),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            run_at=data.get("run_at"),
            parents=tuple(data.get("parents") or ()),
            context=dict(data.get("context") or {}),
            logs=list(data.get("logs") or []),
            unique_key=data.get("unique_key"),
            worker_id=data.get("worker_id"),
            lease_expires_at=data.get("lease_expires_at"),
            cancel_reason=data.get("cancel_reason"),
            cancel_requested=bool(data.get("cancel_requested", False)),
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
