"""The per-request holder: a fresh one holds nothing, and its state lives in slots set by
its initializer — no class attribute of the same name (CPython 3.11 leaves the attribute
accesses of such a name unspecialized, and a request makes a dozen)."""

from __future__ import annotations

import pytest

from qakeapi.core._request_tasks import RequestTasks


class Owner:
    def __init__(self) -> None:
        self.started: list[list[object]] = []

    def start_held(self, jobs: list[object]) -> bool:
        self.started.append(jobs)
        return False

    def drop_held(self, jobs: list[object], reason: str) -> None:
        raise AssertionError("not dropped")


def test_a_new_holder_is_open_and_holds_nothing() -> None:
    holder = RequestTasks()
    assert holder.open and holder.holds_queued
    assert not holder.must_flush and not holder.yield_to_runners
    assert holder.held is None and holder.held_owner is None and holder.inline is None


def test_state_is_per_instance_in_slots_not_class_defaults() -> None:
    member = type(RequestTasks.__dict__["open"])
    assert member.__name__ == "member_descriptor"
    for name in ("_participants", "held", "held_owner", "holds_queued", "inline",
                 "must_flush", "open", "yield_to_runners"):
        assert isinstance(RequestTasks.__dict__[name], member), name
    holder = RequestTasks()
    with pytest.raises(AttributeError):
        holder.elsewhere = 1  # type: ignore[attr-defined]


def test_holding_and_releasing_stays_with_one_request() -> None:
    owner = Owner()
    first, second = RequestTasks(), RequestTasks()
    assert first.hold("a", owner) and first.hold("b", owner)
    assert not first.hold("c", Owner())  # a second owner is refused
    assert second.held is None
    first.release()
    assert owner.started == [["a", "b"]] and not first.open and second.open
