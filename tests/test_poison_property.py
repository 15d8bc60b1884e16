"""Property: whatever a stored row holds, on every backend, no exception escapes the worker
loop or the CLI, every good task still succeeds, and every row that can't be read ends
``failed`` with a reason (rows written past the storage's checks with ``store_poisoned``)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qakeapi.exceptions import MissingParentError
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks._cli import queue
from qakeapi.types import TaskRecord, TaskStatus

from . import _queue_tasks as t
from ._poison import DEEP, store_poisoned
from ._redis import redis_queue_url

pytestmark = pytest.mark.slow

FIELDS = ["name", "status", "args", "kwargs", "attempts", "max_retries", "timeout", "priority",
          "result", "error", "created_at", "started_at", "finished_at", "parents", "context",
          "logs", "worker_id", "lease_expires_at", "cancel_reason", "cancel_requested"]
"""Every stored field but ``run_at`` and ``unique_key``, whose valid values may rightly
keep a task waiting (a far-off time; a key already taken)."""
SPECIAL = ["[" * DEEP + "]" * DEEP, "{", "bogus", "", "null", "1e400", '"x"', "[]", "{}",
           '{"__qk__": "nonsense"}', "[[1]]", "-1", "1.5", "9" * 30]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)
VALUES = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=12), st.binary(max_size=8),
                   st.integers(), st.floats(), JSON)
POISON = st.tuples(st.sampled_from(FIELDS), VALUES)


def raw_of(value: Any) -> str | bytes | int | float:
    """How a durable backend could hold ``value``: text, bytes or a number as they are
    (NaN and integers SQLite can't hold as text), anything else as its JSON text."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if not math.isnan(value) else "nan"
    return json.dumps(value)


class WorkerLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "claiming failed" in record.getMessage() or "heartbeat failed" in record.getMessage():
            self.problems.append(record.getMessage())


@dataclass
class Running:
    """A started queue on a portal's event loop (each example runs its own worker)."""

    url: str
    portal: anyio.from_thread.BlockingPortal
    tasks: QueuedTasks
    log: WorkerLog = field(default_factory=WorkerLog)


@contextmanager
def start(backend: str, tmp_path: Path) -> Iterator[Running]:
    with ExitStack() as stack:
        if backend == "redis":
            url = stack.enter_context(redis_queue_url())
        else:
            url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path}/queue.db"}[backend]
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
        tasks = QueuedTasks(url, embedded_worker=False)
        tasks.register(t.add)
        stack.enter_context(portal.wrap_async_context_manager(tasks))
        state = Running(url, portal, tasks)
        logger = logging.getLogger("qakeapi.worker")
        logger.addHandler(state.log)
        stack.callback(logger.removeHandler, state.log)
        yield state


@pytest.fixture(params=["memory", "sqlite", "redis"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    with start(request.param, tmp_path) as state:
        yield state


@pytest.fixture(params=["memory", "sqlite", "redis"])
def running_for_options(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    with start(request.param, tmp_path) as state:
        yield state


def good_task(i: int) -> TaskRecord:
    return TaskRecord(id=os.urandom(8).hex(), name=task_name, args=[i, 1], kwargs={},
                      created_at=1000.0 + i)


task_name = "tests._queue_tasks:add"


async def store(run: Running, poisons: list[tuple[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """Good tasks around the poisoned ones: (good ids, {poisoned id: field})."""
    storage = run.tasks.storage
    good, bad = [good_task(0)], {}
    await storage.enqueue(good)
    for i, (name, value) in enumerate(poisons):
        record = good_task(10 + i)
        try:
            await store_poisoned(storage, record, name, raw_of(value), value)
        except MissingParentError:  # memory checks parents= as it stores
            continue
        bad[record.id] = name
        good.append(good_task(20 + i))
        await storage.enqueue(good[-1:])
    return [r.id for r in good], bad


async def run_worker_until_settled(run: Running, ids: list[str]) -> dict[str, TaskRecord]:
    """Run a worker until every task of ``ids`` is terminal; an exception that escapes the
    worker loop fails the test."""
    storage = run.tasks.storage
    worker = run.tasks.worker()
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        with anyio.fail_after(60):
            while True:
                found = {i: await storage.get(i) for i in ids}
                if all(r is not None and r.is_terminal for r in found.values()):
                    break
                await anyio.sleep(0.02)
        await worker.stop_and_wait()
    return {i: r for i, r in found.items() if r is not None}


def cli_works(url: str, task_ids: list[str]) -> None:
    if url.startswith("memory"):
        return
    runner = CliRunner()
    for args in (["list", "--json"], ["list"], ["status", "--json"], ["status"],
                 *(["show", i] for i in task_ids), *(["logs", i] for i in task_ids)):
        result = runner.invoke(queue, [*args, "--url", url])
        assert (result.exit_code, result.exception) == (0, None), (args, result.output)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(poisons=st.lists(POISON, min_size=1, max_size=3))
def test_any_stored_row_fails_only_itself(running: Running,
                                          poisons: list[tuple[str, Any]]) -> None:
    assume(all(value != "running" for _, value in poisons))  # a valid state, left as it is
    good, bad = running.portal.call(store, running, poisons)
    found = running.portal.call(run_worker_until_settled, running, [*good, *bad])
    for task_id in good:
        assert found[task_id].status is TaskStatus.SUCCEEDED, found[task_id]
    for task_id, name in bad.items():
        record = found[task_id]
        if record.error is not None and record.error.type == "CorruptTaskError":
            assert record.status is TaskStatus.FAILED
            assert record.error.message.startswith(f"corrupt row: task {record.id}: ")
        elif record.status is TaskStatus.FAILED and name != "status":
            assert record.error is not None and record.error.message
    cli_works(running.url, list(bad))
    assert running.log.problems == []


OPTION_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                          st.text(max_size=4), st.binary(max_size=3),
                          st.lists(st.integers(), max_size=2))
OPTIONS = st.fixed_dictionaries({}, optional={
    "priority": OPTION_VALUES, "max_retries": OPTION_VALUES, "timeout": OPTION_VALUES,
    "unique_key": OPTION_VALUES,
    "delay": st.one_of(OPTION_VALUES.filter(lambda v: not isinstance(v, (int, float))
                                            or not 1 < v < 1e300),
                       st.floats(0, 0.2))})
"""Any value of every option of ``add_task`` (a finite delay over a second would rightly
keep its task waiting past the test's patience)."""


async def add_with_options(run: Running, options: dict[str, Any]) -> list[str]:
    """Ids of a good task and of the task with ``options`` if add_task took them; an
    error that is not ValueError/TypeError, here or while storing, fails the test."""
    ids = [run.tasks.add_task(t.add, 1, 1).id]
    with suppress(ValueError, TypeError):
        ids.append(run.tasks.add_task(t.add, 2, 2, **options).id)
    await run.tasks.flush()
    return ids


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(options=OPTIONS)
def test_any_option_values_are_refused_or_end(running_for_options: Running,
                                              options: dict[str, Any]) -> None:
    running = running_for_options
    ids = running.portal.call(add_with_options, running, options)
    found = running.portal.call(run_worker_until_settled, running, ids)
    assert found[ids[0]].status is TaskStatus.SUCCEEDED
    for record in found.values():
        assert record.status is TaskStatus.SUCCEEDED or (
            record.error is not None or record.cancel_reason), record
