"""A background task's Job is a full TaskRecord: its initializer is made from the record's
fields, so a field added to TaskRecord is set on every Job (or refused at import)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from qakeapi.core._background_jobs import JOB_ARGUMENTS, NO_KWARGS, Job, record_initializer
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
