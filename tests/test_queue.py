"""Queued tasks end to end with the embedded worker: memory, a real SQLite file, real Redis."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from qakeapi.exceptions import (
    ConfigurationError,
    MissingParentError,
    QueueError,
    SerializationError,
    TaskCancelledError,
    TaskFailedError,
)
from qakeapi.queued_tasks import QueuedTasks, QueueSettings, set_context
from qakeapi.types import TaskStatus

from . import _queue_tasks as t
from ._redis import redis_queue_url

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "redis":
        with redis_queue_url() as url:
            yield url
    else:
        yield "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/queue.db"


def fast_settings(url: str, **changes: Any) -> QueueSettings:
    return QueueSettings(url=url, retry_base_delay=0.01, retry_max_delay=0.05,
                         shutdown_grace=1.0, **changes)


@pytest.fixture
async def tasks(queue_url: str) -> AsyncIterator[QueuedTasks]:
    async with QueuedTasks(settings=fast_settings(queue_url)) as queue:
        yield queue


def key() -> str:
    return uuid.uuid4().hex


async def test_result_and_sync_function(tasks: QueuedTasks) -> None:
    assert await tasks.add_task(t.add, 2, 3).result(5) == 5
    assert await tasks.add_task(t.multiply, 4, b=5).result(5) == 20


async def test_extended_types_roundtrip(tasks: QueuedTasks) -> None:
    values = {"when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "day": dt.date(2026, 1, 2),
              "key": uuid.uuid4(), "amount": decimal.Decimal("12.30"), "blob": b"\x00\xff"}
    assert await tasks.add_task(t.types_roundtrip, **values).result(5) == values


async def test_dependencies_run_in_order(tasks: QueuedTasks) -> None:
    k = key()
    first = tasks.add_task(t.record_order, k, "first")
    second = tasks.add_task(t.record_order, k, "second", parent=first)
    third = tasks.add_task(t.record_order, k, "third", parent=[first, second.id])
    assert await third.result(5) == "third"
    orders = [(await ref.record()).context["order"] for ref in (first, second, third)]
    assert orders == [1, 2, 3]


async def test_failed_parent_cancels_the_chain(tasks: QueuedTasks) -> None:
    parent = tasks.add_task(t.no_retry, key())
    child = tasks.add_task(t.add, 1, 1, parent=parent)
    grandchild = tasks.add_task(t.add, 1, 2, parent=child)
    with pytest.raises(TaskFailedError):
        await parent.result(5)
    for ref in (child, grandchild):
        with pytest.raises(TaskCancelledError, match=parent.id):
            await ref.result(5)


async def test_missing_parent_is_a_clear_error(tasks: QueuedTasks) -> None:
    with pytest.raises(MissingParentError, match="no-such-id"):
        await tasks.enqueue(t.add, 1, 2, parent="no-such-id")


async def test_retries_then_success_keeps_context_and_logs(tasks: QueuedTasks) -> None:
    k = key()
    record = await tasks.add_task(t.fail_times, k, 2).wait(10)
    assert (record.status, record.result, record.attempts) == (TaskStatus.SUCCEEDED,
                                                               "ok after 3", 3)
    assert record.context["seen"] == 3
    assert [line.split(": ", 1)[1] for line in record.logs] == [
        "attempt 1", "attempt 2", "attempt 3"]


async def test_retries_exhausted(queue_url: str) -> None:
    async with QueuedTasks(settings=fast_settings(queue_url, max_retries=1)) as tasks:
        record = await tasks.add_task(t.fail_times, key(), 5).wait(10)
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 2)
    assert record.error is not None and record.error.message == "failure 2"


async def test_per_task_max_retries(tasks: QueuedTasks) -> None:
    record = await tasks.add_task(t.fail_times, key(), 5, max_retries=0).wait(10)
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 1)


async def test_no_retry_marker_and_types(tasks: QueuedTasks) -> None:
    k1, k2 = key(), key()
    record = await tasks.add_task(t.no_retry, k1).wait(10)
    assert (record.status, t.runs[k1]) == (TaskStatus.FAILED, 1)
    tasks.register(t.auth_fails, no_retry_on=[t.AuthError])
    record = await tasks.add_task(t.auth_fails, k2).wait(10)
    assert (record.status, t.runs[k2], record.error.type) == (  # type: ignore[union-attr]
        TaskStatus.FAILED, 1, "AuthError")


async def test_retry_after_delay(tasks: QueuedTasks) -> None:
    k = key()
    record = await tasks.add_task(t.retry_later, k).wait(10)
    assert (record.status, record.result, t.runs[k]) == (TaskStatus.SUCCEEDED,
                                                         "second time", 2)


async def test_timeout_is_recorded(tasks: QueuedTasks) -> None:
    record = await tasks.add_task(t.sleep_for, 30, timeout=0.1, max_retries=0).wait(10)
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.timed_out


async def test_progress_visible_while_running_and_cancel(tasks: QueuedTasks) -> None:
    k = key()
    t.gates[k] = anyio.Event()
    ref = tasks.add_task(t.wait_gate, k)
    with anyio.fail_after(10):
        while True:
            record = await ref.record()
            if record.status is TaskStatus.RUNNING and record.context.get("progress") == 50:
                break
            await anyio.sleep(0.05)
    assert record.context["stage"] == {"name": "waiting"}
    assert any("waiting at gate" in line for line in record.logs)
    cancelled = await ref.cancel("stop it")
    assert cancelled.cancel_requested or cancelled.status is TaskStatus.CANCELLED
    final = await ref.wait(10)
    assert (final.status, final.cancel_reason) == (TaskStatus.CANCELLED, "stop it")


async def test_delay_and_priority(tasks: QueuedTasks) -> None:
    ref = tasks.add_task(t.add, 1, 1, delay=0.3)
    record = await ref.wait(10)
    assert record.started_at is not None and record.started_at >= record.created_at + 0.29


async def test_unique_key(tasks: QueuedTasks) -> None:
    k = key()
    t.gates[k] = anyio.Event()
    first = await tasks.enqueue(t.wait_gate, k, unique_key="report-1")
    second = await tasks.enqueue(t.wait_gate, k, unique_key="report-1")
    assert second.id == first.id
    t.gates[k].set()
    assert await first.result(10) == "through"


async def test_reserved_names_through_task_kwargs(tasks: QueuedTasks) -> None:
    ref = tasks.add_task(t.echo, task_kwargs={"value": {"timeout": 5}})
    assert await ref.result(5) == {"timeout": 5}


async def test_bad_arguments_are_refused_with_their_name(tasks: QueuedTasks) -> None:
    with pytest.raises(SerializationError, match=r"argument 'value'.*\['items'\]\[1\]"):
        tasks.add_task(t.echo, value={"items": [1, object()]})
    with pytest.raises(SerializationError, match="positional argument 0"):
        tasks.add_task(t.echo, {1, 2})
    with pytest.raises(SerializationError, match="dict key 1"):
        tasks.add_task(t.echo, {1: "x"})


async def test_lambdas_and_closures_are_refused(tasks: QueuedTasks) -> None:
    def local(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="module level"):
        tasks.add_task(lambda: None)
    with pytest.raises(TypeError, match="module level"):
        tasks.add_task(local, 1)


async def test_unserializable_result_fails_clearly(tasks: QueuedTasks) -> None:
    record = await tasks.add_task(t.returns_object).wait(10)
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "SerializationError"


async def test_context_outside_a_task() -> None:
    with pytest.raises(RuntimeError, match="inside a running queued task"):
        set_context("a", 1)


async def test_not_started_is_a_clear_error() -> None:
    with pytest.raises(QueueError, match="not started"):
        QueuedTasks().add_task(t.add, 1, 2)


def test_settings_from_environment() -> None:
    settings = QueueSettings.from_env({"QUEUE_MAX_WORKERS": "4", "QUEUE_TASK_TIMEOUT": "0",
                                       "QUEUE_MAX_RETRIES": "5", "QUEUE_URL": "sqlite:///x.db",
                                       "QUEUE_EMBEDDED_WORKER": "0"})
    assert (settings.max_workers, settings.timeout, settings.max_retries, settings.url,
            settings.embedded_worker) == (4, None, 5, "sqlite:///x.db", False)
    with pytest.raises(ConfigurationError, match="QUEUE_MAX_WORKERS"):
        QueueSettings.from_env({"QUEUE_MAX_WORKERS": "many"})
    with pytest.raises(ConfigurationError, match="QUEUE_EMBEDDED_WORKER"):
        QueueSettings.from_env({"QUEUE_EMBEDDED_WORKER": "perhaps"})
    with pytest.raises(ConfigurationError, match="QUEUE_MAX_WORKERS"):
        QueueSettings.from_env({"QUEUE_MAX_WORKERS": "0"})


async def test_unknown_url_scheme() -> None:
    with pytest.raises(ConfigurationError, match="unknown QUEUE_URL scheme 'postgres'"):
        async with QueuedTasks("postgres://localhost/db"):
            pass


async def test_default_context_value(tasks: QueuedTasks) -> None:
    assert await tasks.add_task(t.read_context_default).result(5) == "fallback"


async def test_script_functions_refused_for_durable_queues(tmp_path: Path) -> None:
    import types

    fn = types.FunctionType(t.add.__code__, {}, "add")
    fn.__module__ = "__main__"
    async with QueuedTasks(settings=fast_settings(f"sqlite:///{tmp_path}/q.db")) as tasks:
        with pytest.raises(TypeError, match="__main__"):
            tasks.add_task(fn, 1, 2)


async def test_configure_only_before_start(tasks: QueuedTasks) -> None:
    with pytest.raises(QueueError, match="before it starts"):
        tasks.configure(url="memory://")
    fresh = QueuedTasks("memory://")
    fresh.configure(url="sqlite:///x.db", embedded_worker=False)
    assert fresh.resolve_settings().url == "sqlite:///x.db"


async def test_tasks_queued_while_a_body_streams_are_stored(tmp_path: Path) -> None:
    """Queued in the handler: stored before the response. Queued while the body streams
    (after that flush): stored when the request ends, not lost."""
    from qakeapi import QakeAPI
    from qakeapi.responses import StreamingResponse
    from qakeapi.testing import AsyncTestClient

    app = QakeAPI(queue_url=f"sqlite:///{tmp_path}/stream.db")
    refs: dict[str, str] = {}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        refs["handler"] = app.queued_tasks.add_task(t.add, 1, 2).id

        async def body() -> AsyncIterator[bytes]:
            yield b"first "
            refs["streaming"] = app.queued_tasks.add_task(t.add, 3, 4).id
            yield b"second"

        return StreamingResponse(body())

    async with AsyncTestClient(app) as client:
        assert (await client.get("/stream")).text == "first second"
        for name, expected in (("handler", 3), ("streaming", 7)):
            with anyio.fail_after(10):
                record = await app.queued_tasks.get(refs[name])
                while record is None or record.status is not TaskStatus.SUCCEEDED:
                    await anyio.sleep(0.02)
                    record = await app.queued_tasks.get(refs[name])
            assert record.result == expected
