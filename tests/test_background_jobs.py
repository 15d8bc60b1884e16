"""A background task's Job is a full TaskRecord: its initializer is made from the record's
fields, so a field added to TaskRecord is set on every Job (or refused at import)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from typing import Any

import pytest

from qakeapi.core._background_jobs import (
    JOB_ARGUMENTS,
    JOB_UNSET_DEFAULTS,
    NO_KWARGS,
    Job,
    is_async_callable,
    record_initializer,
    unset_defaults,
)
from qakeapi.core._background_ref import BackgroundTaskRef
from qakeapi.core.background import BackgroundTaskManager
from qakeapi.types import TaskRecord


async def work(x: int) -> int:
    return x


def new_job() -> Job:
    return Job(BackgroundTaskRef("bg-1"), "tests:work", (1,), {"y": 2}, 3, 4.0, 123.0, work,
               True, (KeyError,))


def test_every_record_field_is_set_to_its_default_or_the_given_value() -> None:
    job = new_job()
    defaults = TaskRecord(id="x", name="y")
    given = {"id": "bg-1", "name": "tests:work", "args": (1,), "kwargs": {"y": 2},
             "max_retries": 3, "timeout": 4.0, "created_at": 123.0}
    assert set(given) == set(JOB_ARGUMENTS)
    for field in dataclasses.fields(TaskRecord):
        expected = given.get(field.name, getattr(defaults, field.name))
        assert getattr(job, field.name) == expected, field.name
    assert (job.fn, job.is_async, job.no_retry_on, job.done, job.runner) == (
        work, True, (KeyError,), None, None)


def test_the_shared_empty_context_refuses_changes_and_serialises_as_a_dict() -> None:
    first, second = new_job(), new_job()
    assert first.context is second.context is NO_KWARGS
    with pytest.raises(TypeError, match="shared empty mapping"):
        first.context["seen"] = True
    with pytest.raises(TypeError, match="shared empty mapping"):
        first.context.update(seen=True)
    assert second.context == {} and isinstance(second.context, dict)
    assert json.loads(json.dumps(first.to_dict()))["context"] == {}
    first.context = {"seen": True}
    assert (first.context, second.context) == ({"seen": True}, {})


@pytest.mark.anyio
async def test_a_task_without_keyword_arguments_shares_the_empty_mapping() -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    async with manager.lifespan():
        bare = manager.tasks[await manager.add_task(work, 1, wait=True)]
        named = manager.tasks[await manager.add_task(work, x=2, wait=True)]
    assert (bare.kwargs, bare.result, named.kwargs, named.result) == ({}, 1, {"x": 2}, 2)
    assert bare.kwargs is NO_KWARGS and named.kwargs is not NO_KWARGS
    BackgroundTaskManager.reset()


@dataclasses.dataclass(slots=True, eq=False)
class GrownRecord(TaskRecord):
    """TaskRecord with a field added after Job was written."""

    shard: str = "eu"
    tags: list[str] = dataclasses.field(default_factory=list)


def test_a_field_added_to_the_record_is_set_without_touching_the_initializer() -> None:
    class GrownJob(GrownRecord):
        __slots__ = ("fn",)
        __init__ = record_initializer(GrownRecord, ("id", "name"), ("fn",))

    job: Any = GrownJob("a", "b", work)
    assert (job.id, job.name, job.fn, job.shard, job.tags, job.context) == (
        "a", "b", work, "eu", [], {})
    assert GrownJob("c", "d", work).context is not job.context
    assert GrownJob("c", "d", work).tags is not job.tags


def test_a_field_without_a_default_must_be_given() -> None:
    @dataclasses.dataclass(slots=True, eq=False)
    class Required(TaskRecord):
        region: str = dataclasses.field(kw_only=True)

    with pytest.raises(TypeError, match=r"Required\.region has no default"):
        record_initializer(Required, ("id", "name"))
    init = record_initializer(Required, ("id", "name", "region"))
    assert init is not None


def test_an_unknown_argument_is_refused() -> None:
    with pytest.raises(TypeError, match="no field"):
        record_initializer(TaskRecord, ("id", "name", "colour"))


def test_record_initializer_leaves_the_unset_fields_to_the_subclass() -> None:
    class Partial(TaskRecord):
        __slots__ = ()
        __init__ = record_initializer(TaskRecord, ("id", "name"), unset=("priority",))

    record: Any = Partial("a", "b")
    assert (record.id, record.name, record.attempts) == ("a", "b", 0)
    with pytest.raises(AttributeError):
        record.priority  # noqa: B018 - reading is the point


def test_only_immutable_defaults_are_left_unset() -> None:
    unset = unset_defaults(GrownRecord, keep=("id", "name"))
    assert "shard" in unset and unset["priority"] == 0 and unset["parents"] == ()
    assert not {"kwargs", "context", "tags"} & set(unset)  # dict/list defaults: made per record
    assert not {"status", "kwargs", "context", *JOB_ARGUMENTS} & set(JOB_UNSET_DEFAULTS)


def test_a_job_answers_its_unset_fields_and_keeps_what_is_written() -> None:
    job = new_job()
    assert (job.attempts, job.cancel_reason, job.logs) == (0, None, ())
    job.attempts, job.cancel_reason = 2, "stop"
    assert (job.attempts, job.cancel_reason) == (2, "stop")
    assert (copy.copy(job).cancel_reason, copy.copy(job).attempts) == ("stop", 2)
    assert dataclasses.asdict(job)["attempts"] == 2
    with pytest.raises(AttributeError, match="colour"):
        job.colour  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.anyio
async def test_the_table_keeps_plain_ids_and_callers_get_refs() -> None:
    BackgroundTaskManager.reset()
    manager = BackgroundTaskManager()
    async with manager.lifespan():
        ref = await manager.add_task(work, 1, wait=True)
        ids = list(manager.tasks)
    assert type(ref) is BackgroundTaskRef and ids == [ref]
    assert type(ids[0]) is str and type(manager.tasks[ref].id) is str  # not GC-tracked
    BackgroundTaskManager.reset()


def test_coroutine_functions_are_found_through_partials_and_call_methods() -> None:
    async def fetch(a: int, b: int) -> int:
        return a + b

    def plain(a: int) -> int:
        return a

    class Handler:
        async def __call__(self) -> None: ...

    assert is_async_callable(fetch)
    assert is_async_callable(functools.partial(functools.partial(fetch, 1), 2))
    assert is_async_callable(Handler())
    assert not is_async_callable(plain)
    assert not is_async_callable(functools.partial(plain, 1))
