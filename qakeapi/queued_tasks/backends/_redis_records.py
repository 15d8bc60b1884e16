"""A task as the Redis queue stores it: one hash, its fixed part as JSON in ``s`` and its
changing fields beside it (see :mod:`._redis_scripts`), read back as a :class:`TaskRecord`."""

from __future__ import annotations

import logging
from typing import Any

from ...types import TaskRecord
from ._rows import corrupt, decode_record, load_json, placeholder, read_record

__all__ = ["claimed_record", "shown_record"]

logger = logging.getLogger("qakeapi.queue")

_JSON_FIELDS = ("result", "error", "context", "logs")
_HASH_FIELDS = (("attempts", "attempts"), ("started_at", "started_at"),
                ("finished_at", "finished_at"), ("run_at", "run_at"), ("worker_id", "worker_id"),
                ("lease_expires_at", "lease"), ("cancel_reason", "cancel_reason"),
                ("cancel_requested", "cancel_requested"),
                *((name, name) for name in _JSON_FIELDS))


def _fields(task_id: str, h: dict[str, str]) -> dict[str, Any]:
    """A task hash in ``TaskRecord.to_dict`` shape: its fixed part ``s`` parsed, its
    changing fields as stored ('' = none); ValueError/TypeError if ``s`` can't be read."""
    fixed = load_json(h.get("s"), "s")
    if not isinstance(fixed, dict):
        raise TypeError(f"s must be an object, got a {type(fixed).__name__}")
    data = {**fixed, "id": task_id, "status": h.get("status")}
    for field, key in _HASH_FIELDS:
        data[field] = h.get(key) or None
    return data


def claimed_record(task_id: str, h: dict[str, str]) -> TaskRecord:
    """The record of a claimed task; CorruptTaskError if its hash can't be read."""
    try:
        data = _fields(task_id, h)
    except Exception as exc:  # any failure to read the row makes it corrupt, nothing else
        raise corrupt(task_id, exc) from exc
    return decode_record(data, _JSON_FIELDS)


def shown_record(task_id: str, h: dict[str, str]) -> TaskRecord:
    """The record to show, or a placeholder for a hash that can't be read (logged)."""
    try:
        data = _fields(task_id, h)
    except Exception as exc:  # any failure to read the row makes it corrupt, nothing else
        error = corrupt(task_id, exc)
        logger.warning("%s", error)
        return placeholder({"id": task_id, "status": h.get("status"),
                            "finished_at": h.get("finished_at")}, error)
    return read_record(data, _JSON_FIELDS)
