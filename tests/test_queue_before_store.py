"""``@tasks.before_store``: hooks that see and change a task before it is checked and
stored (here: adding context), on every backend; a failing hook refuses the add_task with
its own error and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from qakeapi.queued_tasks import NewTask, QueuedTasks

from . import _queue_tasks as t
from .test_queue import fast_settings, queue_url  # noqa: F401 - the backends fixture

pytestmark = pytest.mark.anyio


async def test_a_hook_changes_the_task_before_it_is_stored(queue_url: str  # noqa: F811
                                                           ) -> None:
    seen: list[tuple[str, list[Any], dict[str, Any], dict[str, Any]]] = []
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:

        @tasks.before_store
        def tag_tenant(task: NewTask) -> None:
            seen.append((task.name, list(task.args), dict(task.kwargs), dict(task.options)))
            task.context["tenant"] = {"id": 7}
            task.options["priority"] = 5

        def double_first(task: NewTask) -> None:
            if task.args and isinstance(task.args[0], int):
                task.args[0] *= 2

        tasks.before_store(double_first)
        ref = tasks.add_task(t.read_context, "tenant.id", context={"trace": "abc"}, delay=0)
        added = tasks.add_task(t.add, 2, 3)
        stored = await tasks.enqueue(t.read_context, "tenant")
        assert await ref.result(10) == 7
        assert await added.result(10) == 7
        assert await stored.result(10) == {"id": 7}
        record = await ref.record()
        assert (record.priority, record.context["trace"], record.context["tenant"]) == (
            5, "abc", {"id": 7})
    assert seen[0] == ("tests._queue_tasks:read_context", ["tenant.id"], {}, {
        "parent": None, "delay": 0, "priority": None, "max_retries": None, "timeout": None,
        "unique_key": None, "auto_remove": None})
    assert [name for name, *_ in seen] == [
        "tests._queue_tasks:read_context", "tests._queue_tasks:add",
        "tests._queue_tasks:read_context"]


class Refused(Exception):
    pass


async def test_a_failing_hook_refuses_the_task_and_nothing_is_stored(
        queue_url: str) -> None:  # noqa: F811
    async with QueuedTasks(settings=fast_settings(queue_url)) as tasks:

        @tasks.before_store
        def guard(task: NewTask) -> None:
            if task.kwargs.get("b") == 0:
                raise Refused("b must not be 0")
            if task.args == [9]:
                task.options["priority"] = "high"
            if task.args == [8]:
                task.options["colour"] = "red"
            if task.args == [7]:
                task.context["when"] = b"x"

        with pytest.raises(Refused, match="b must not be 0") as info:
            tasks.add_task(t.add, 1, b=0)
        assert any("guard" in note and "not stored" in note for note in info.value.__notes__)
        with pytest.raises(Refused):
            await tasks.enqueue(t.add, 1, b=0)
        with pytest.raises(TypeError, match="priority"):
            tasks.add_task(t.echo, 9)
        with pytest.raises(ValueError, match="colour"):
            tasks.add_task(t.echo, 8)
        with pytest.raises(TypeError, match="context"):
            tasks.add_task(t.echo, 7)
        await tasks.flush()
        assert await tasks.list() == []
        assert await tasks.add_task(t.add, 1, b=2).result(10) == 3


async def test_bad_hooks_are_refused_when_registered_or_run() -> None:
    async def async_hook(task: NewTask) -> None:
        return None

    tasks = QueuedTasks()
    with pytest.raises(TypeError, match="plain function"):
        tasks.before_store(async_hook)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="before_store"):
        tasks.before_store("not a function")  # type: ignore[arg-type]
    async with tasks:
        tasks.before_store(lambda task: task.name)  # type: ignore[arg-type, func-returns-value]
        with pytest.raises(TypeError, match="returns None"):
            tasks.add_task(t.add, 1, 2)
        await tasks.flush()
        assert await tasks.list() == []
