"""The value objects every task path shares (qakeapi.types): a record survives its dict
form field for field, and a bad stored field is named when it is read back."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from qakeapi.constants import MAX_JSON_DEPTH
from qakeapi.types import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    QueueStats,
    TaskErrorInfo,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)

EVERY_FIELD = TaskRecord(
    id="t-1", name="jobs:send", status=TaskStatus.FAILED, args=[1, "a"], kwargs={"k": [1]},
    attempts=3, max_retries=4, timeout=2.5, priority=-7, result={"r": None},
    error=TaskErrorInfo("KeyError", "'x'", "Traceback...", timed_out=True),
    created_at=1_700_000_000.25, started_at=1_700_000_001.0, finished_at=1_700_000_002.0,
    run_at=1_700_000_003.0, parents=("p-1", "p-2"), context={"cursor": 10}, logs=["one"],
    unique_key="u", worker_id="w-1", lease_expires_at=1_700_000_004.0,
    cancel_reason="parent p-1 failed", cancel_requested=True, auto_remove=True,
)


def test_every_field_is_set_in_the_sample() -> None:
    for f in dataclasses.fields(TaskRecord):
        default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else f.default)
        assert getattr(EVERY_FIELD, f.name) != default, f"set {f.name} in EVERY_FIELD"


def test_record_survives_its_json_form_field_for_field() -> None:
    data = json.loads(json.dumps(EVERY_FIELD.to_dict()))
    assert set(data) == {f.name for f in dataclasses.fields(TaskRecord)}
    back = TaskRecord.from_dict(data)
    for f in dataclasses.fields(TaskRecord):
        want, got = getattr(EVERY_FIELD, f.name), getattr(back, f.name)
        assert (list(got) if f.name == "logs" else got) == want, f.name


def test_public_form_shows_times_as_iso_8601() -> None:
    public = EVERY_FIELD.to_public_dict()
    assert public["created_at"] == "2023-11-14T22:13:20.250000+00:00"
    assert public["run_at"] == "2023-11-14T22:13:23+00:00"
    assert public["status"] == "failed" and public["error"]["timed_out"] is True


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"status": "paused"}, ValueError, "status 'paused' is not a task status"),
    ({"id": None}, ValueError, "id is missing"),
    ({"attempts": "three"}, TypeError, "attempts must be an integer"),
    ({"attempts": 2**64}, ValueError, "attempts is out of range"),
    ({"timeout": float("inf")}, ValueError, "timeout must be a finite number"),
    ({"created_at": 1e13}, ValueError, "created_at is not a time between"),
    ({"parents": ["p", 1]}, TypeError, "an item of parents must be text"),
    ({"kwargs": {"k": 1, "\udcff": 2}}, ValueError, "a key of kwargs is not valid UTF-8"),
    ({"cancel_requested": "yes"}, TypeError, "cancel_requested must be a flag"),
    ({"error": {"type": 1}}, TypeError, "error.type must be text"),
    ({"result": json.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))},
     ValueError, "result is nested more than"),
])
def test_a_bad_stored_field_is_named(change: dict[str, Any], error: type[Exception],
                                     message: str) -> None:
    with pytest.raises(error, match=message):
        TaskRecord.from_dict({**EVERY_FIELD.to_dict(), **change})


def test_stored_text_numbers_and_flags_are_read() -> None:
    record = TaskRecord.from_dict({**EVERY_FIELD.to_dict(), "attempts": "2", "timeout": "1.5",
                                   "cancel_requested": "0", "auto_remove": 1})
    assert (record.attempts, record.timeout) == (2, 1.5)
    assert (record.cancel_requested, record.auto_remove) == (False, True)


def test_statuses_split_into_active_and_terminal() -> None:
    assert set(TaskStatus) == ACTIVE_STATUSES | TERMINAL_STATUSES
    assert not ACTIVE_STATUSES & TERMINAL_STATUSES
    assert [s.is_terminal for s in TaskStatus] == [s in TERMINAL_STATUSES for s in TaskStatus]
    assert str(TaskStatus.RUNNING) == "running" and {"pending": 1}[TaskStatus.PENDING] == 1


def test_error_info_from_an_exception_keeps_its_traceback() -> None:
    try:
        raise KeyError("gone")
    except KeyError as exc:
        info = TaskErrorInfo.from_exception(exc, timed_out=False)
    assert (info.type, info.message) == ("KeyError", "'gone'")
    assert "raise KeyError" in info.traceback
    assert TaskErrorInfo.from_dict(info.to_dict()) == info


def test_worker_info_and_stats_dict_forms() -> None:
    worker = WorkerInfo("w", "host", 12, 4, 1.0, 2.0, running=3)
    assert WorkerInfo.from_dict(json.loads(json.dumps(worker.to_dict()))) == worker
    stats = QueueStats(counts={TaskStatus.PENDING: 2}, oldest_pending_at=5.0)
    assert stats.to_dict() == {"counts": {"pending": 2, "running": 0, "succeeded": 0,
                                          "failed": 0, "cancelled": 0},
                               "oldest_pending_at": 5.0}
