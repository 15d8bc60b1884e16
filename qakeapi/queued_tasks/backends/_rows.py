"""Reading stored rows: a row that can't be read fails only itself.

Every backend turns what it stored (SQLite columns, a Redis hash, a memory record) into a
plain dict in the shape of :meth:`TaskRecord.to_dict` — JSON columns still as text — and
reads it here. :func:`decode_record` is strict: any problem (invalid JSON, nesting deeper
than ``MAX_JSON_DEPTH``, an unknown status, a text priority, a missing field, bytes that
are not UTF-8) becomes one :class:`CorruptTaskError` whose message begins
``"corrupt row: task <id>"`` and names the field. Claiming records such a task ``failed``
with that message instead of running it; reading it (``get``, ``list``) gives
:func:`placeholder`, so inspecting a queue never fails because of one bad row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from ...constants import CORRUPT_ROW
from ...exceptions import CorruptTaskError
from ...types import TaskErrorInfo, TaskRecord, TaskStatus, WorkerInfo

__all__ = ["corrupt", "corrupt_error_info", "decode_record", "load_json", "placeholder",
           "read_record", "read_workers", "safe_text", "status_or_failed"]

logger = logging.getLogger("qakeapi.queue")

_STATUSES = {s.value: s for s in TaskStatus}
_LATEST = 253_402_300_799.0
"""The last second of the year 9999: later times can't be shown."""


def safe_text(text: str) -> str:
    """``text`` with bytes that are not UTF-8 (surrogate escapes) shown as ``\\udcXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def load_json(value: Any, field: str) -> Any:
    """The JSON value of a stored text column; ValueError/TypeError naming ``field``."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be JSON text, got a {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} is not valid UTF-8") from None
    try:
        return json.loads(value)
    except RecursionError:
        raise ValueError(f"{field} is nested too deeply to read") from None
    except ValueError as exc:
        raise ValueError(f"{field} is not valid JSON ({exc})") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    return str(exc) or type(exc).__name__


def decode_record(data: dict[str, Any], json_fields: Collection[str] = ()) -> TaskRecord:
    """The record of a stored row (``json_fields`` still JSON text); ``CorruptTaskError``
    if any field can't be read."""
    try:
        for field in json_fields:
            if data.get(field) is not None:
                data[field] = load_json(data[field], field)
        return TaskRecord.from_dict(data)
    except Exception as exc:  # any failure to read the row makes it corrupt, nothing else
        raise corrupt(data.get("id"), exc) from exc


def corrupt(task_id: Any, exc: BaseException) -> CorruptTaskError:
    """The error for the row of ``task_id`` that could not be read because of ``exc``."""
    shown = safe_text(task_id) if isinstance(task_id, str) else "?"
    return CorruptTaskError(f"{CORRUPT_ROW}: task {shown}: {safe_text(_describe(exc))}")


def corrupt_error_info(exc: CorruptTaskError) -> TaskErrorInfo:
    """The error stored on a task that failed because its row can't be read."""
    return TaskErrorInfo("CorruptTaskError", str(exc))


def status_or_failed(value: Any) -> TaskStatus:
    """The stored status, or ``failed`` for one that is no task status (as shown)."""
    return _STATUSES.get(value, TaskStatus.FAILED) if isinstance(value, str) else (
        TaskStatus.FAILED)


def _time_or_none(value: Any) -> float | None:
    try:
        ts = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return ts if 0 <= ts < _LATEST else None


def placeholder(data: Mapping[str, Any], exc: CorruptTaskError) -> TaskRecord:
    """What inspecting shows for a row that can't be read: its id, name, status, creation
    and finish times where those are readable (else ``"?"``, ``failed``, 0, None), no
    arguments, and the reason as its error (type ``CorruptTaskError``)."""
    task_id, name = data.get("id"), data.get("name")
    return TaskRecord(
        id=safe_text(task_id) if isinstance(task_id, str) else "?",
        name=safe_text(name) if isinstance(name, str) else "?",
        status=status_or_failed(data.get("status")),
        args=[], kwargs={}, created_at=_time_or_none(data.get("created_at")) or 0.0,
        finished_at=_time_or_none(data.get("finished_at")), error=corrupt_error_info(exc),
    )


def read_record(data: dict[str, Any], json_fields: Collection[str] = ()) -> TaskRecord:
    """:func:`decode_record`, or :func:`placeholder` (logged) for a row that can't be
    read: for ``get`` and ``list``, which must work on any queue."""
    raw = dict(data)
    try:
        return decode_record(data, json_fields)
    except CorruptTaskError as exc:
        logger.warning("%s", exc)
        return placeholder(raw, exc)


def read_workers(rows: Collection[tuple[Any, Any]]) -> list[WorkerInfo]:
    """Workers from ``(id, JSON text)`` rows; a row that can't be read is skipped (logged)."""
    workers: list[WorkerInfo] = []
    for worker_id, text in rows:
        try:
            workers.append(WorkerInfo.from_dict(load_json(text, "worker info")))
        except Exception as exc:  # a worker's heartbeat row is rewritten every few seconds
            logger.warning("worker row %s can't be read, skipped: %s",
                           safe_text(str(worker_id)), safe_text(_describe(exc)))
    return workers
