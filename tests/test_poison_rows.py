"""Poison rows against a real worker process and the real CLI, on SQLite and Redis: every
shape of bad row fails only itself, the worker keeps running the good tasks around it, and
every ``qakeapi queue`` command still answers."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import redis
from click.testing import CliRunner

from qakeapi.queued_tasks._cli import queue
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.queued_tasks.backends._redis import RedisStorage
from qakeapi.types import TaskOutcome, TaskRecord, TaskStatus

from ._poison import POISONS, store_poisoned
from ._processes import read_runs, start_worker, stop, wait_until, write_task_app
from ._redis import REDIS_URL, redis_queue_url

pytestmark = pytest.mark.slow
GOOD = 8


def task(i: int, created_at: float, parents: tuple[str, ...] = ()) -> TaskRecord:
    return TaskRecord(id=f"{i:04d}-{os.urandom(4).hex()}", name="taskapp:work", args=[i],
                      kwargs={}, created_at=created_at, parents=parents)


async def fill(url: str) -> tuple[dict[str, str], list[str]]:
    """Good tasks 0..GOOD-1 around one poisoned task per shape, each with a child."""
    storage = open_storage(url)
    await storage.connect()
    bad: dict[str, str] = {}
    children: list[str] = []
    try:
        poisons = iter(sorted(POISONS.items()))
        for i in range(GOOD):
            await storage.enqueue([task(i, 1000.0 + i)])
            for shape, poison in [next(poisons, ("", None)), next(poisons, ("", None))]:
                if poison is None:
                    continue
                record = task(100 + len(bad), 1000.0 + i)
                await store_poisoned(storage, record, poison.field, poison.raw, poison.value)
                bad[record.id] = shape
                child = task(200 + len(bad), 1000.0 + i, parents=(record.id,))
                await storage.enqueue([child])
                children.append(child.id)
    finally:
        await storage.close()
    assert len(bad) == len(POISONS)
    return bad, children


async def read_all(url: str) -> dict[str, TaskRecord]:
    storage = open_storage(url)
    await storage.connect()
    try:
        return {r.id: r for r in await storage.list(limit=1000)}
    finally:
        await storage.close()


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(queue, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.output, result.exception)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def inspect_with_cli(url: str, bad: dict[str, str]) -> None:
    listed = json.loads(run_cli("list", "--url", url, "--limit", "1000", "--json"))
    assert {row["id"] for row in listed} >= set(bad)
    run_cli("list", "--url", url)
    run_cli("list", "--url", url, "--status", "failed")
    counts = json.loads(run_cli("status", "--url", url, "--json"))["counts"]
    assert sum(counts.values()) == len(listed)
    run_cli("status", "--url", url)
    for task_id, shape in bad.items():
        shown = json.loads(run_cli("show", task_id, "--url", url, "--json"))
        assert shown["error"]["type"] == "CorruptTaskError", shape
        assert f"corrupt row: task {task_id}" in run_cli("show", task_id, "--url", url), shape
        run_cli("logs", task_id, "--url", url)


def test_worker_and_cli_survive_poison_rows(tmp_path: Path, queue_url: str) -> None:
    url = queue_url
    runs = write_task_app(tmp_path)
    bad, children = anyio.run(fill, url)
    inspect_with_cli(url, bad)
    worker = start_worker(tmp_path, url, concurrency=3)
    try:
        wait_until(lambda: sorted(read_runs(runs)) == list(range(GOOD)), 60, "the good tasks")

        def settled() -> bool:
            records = anyio.run(read_all, url)
            return all(records[i].is_terminal for i in [*bad, *children])

        wait_until(settled, 60, "the poisoned tasks and their children to end")
        records = anyio.run(read_all, url)
        for task_id, shape in bad.items():
            record = records[task_id]
            assert record.status is TaskStatus.FAILED, shape
            assert record.error is not None and record.error.message.startswith(
                f"corrupt row: task {task_id}: "), shape
        for child_id in children:
            assert records[child_id].status is TaskStatus.CANCELLED
        inspect_with_cli(url, bad)
        retried = next(iter(bad))
        before = records[retried].finished_at
        assert f"retried {retried}: now" in run_cli("retry", retried, "--url", url)

        def failed_again() -> bool:
            # requeue clears finished_at: wait for the new end, not just a different value
            record = anyio.run(read_all, url)[retried]
            return record.is_terminal and record.finished_at != before

        wait_until(failed_again, 60, "the retried task to fail again")
        again = anyio.run(read_all, url)[retried]
        assert again.status is TaskStatus.FAILED and again.error is not None
        assert again.error.message.startswith(f"corrupt row: task {retried}: ")
        run_cli("cancel", retried, "--url", url)
        assert worker.poll() is None, "the worker process died"
        assert sorted(read_runs(runs)) == list(range(GOOD)), "a poisoned task ran"
    finally:
        stop(worker)
        assert worker.stderr is not None
        stderr = worker.stderr.read().decode()
    assert "claiming failed" not in stderr and "Traceback" not in stderr, stderr
    assert f"purged {len(bad) + len(children) + GOOD} task(s)" in run_cli("purge", "--url", url)


# --- Redis: the scripts' own bookkeeping fields of a task hash -----------------------------
T0 = 1_000_000.0


@pytest.fixture
async def redis_storage() -> AsyncIterator[RedisStorage]:
    with redis_queue_url() as redis_url:
        storage = open_storage(redis_url)
        assert isinstance(storage, RedisStorage)
        await storage.connect()
        try:
            yield storage
        finally:
            await storage.close()


def corrupt_hash(storage: RedisStorage, task_id: str, **fields: str | None) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    key = storage.key(f"t:{task_id}")
    for name, value in fields.items():
        if value is None:
            client.hdel(key, name)
        else:
            client.hset(key, name, value)


@pytest.mark.anyio
async def test_redis_bad_scheduling_fields_block_no_claim(redis_storage: RedisStorage) -> None:
    delayed, due = task(1, T0), task(2, T0)
    delayed.run_at = T0 + 10
    await redis_storage.enqueue([delayed, due], now=T0)
    corrupt_hash(redis_storage, delayed.id, score="x", due="nan", rm=None)
    claimed = await redis_storage.claim("w1", 10, 30, now=T0 + 20)
    assert sorted(r.id for r in claimed) == sorted([delayed.id, due.id])


@pytest.mark.anyio
async def test_redis_bad_retry_count_blocks_no_recovery(redis_storage: RedisStorage) -> None:
    bad, good = task(1, T0), task(2, T0)
    good.max_retries = 1
    await redis_storage.enqueue([bad, good], now=T0)
    await redis_storage.claim("w1", 10, 30, now=T0)
    corrupt_hash(redis_storage, bad.id, mr="x")
    assert sorted(await redis_storage.reclaim_expired(now=T0 + 60)) == sorted([bad.id, good.id])
    after = {i: await redis_storage.get(i) for i in (bad.id, good.id)}
    assert after[good.id] is not None and after[good.id].status is TaskStatus.PENDING
    assert after[bad.id] is not None and after[bad.id].status is TaskStatus.FAILED


@pytest.mark.anyio
async def test_redis_bad_child_blocks_not_its_parent(redis_storage: RedisStorage) -> None:
    parent = task(1, T0)
    child = task(2, T0, parents=(parent.id,))
    await redis_storage.enqueue([parent, child], now=T0)
    corrupt_hash(redis_storage, child.id, run_at="soon")
    await redis_storage.claim("w1", 10, 30, now=T0)
    done = [TaskOutcome(parent.id, TaskStatus.SUCCEEDED, result=1)]
    assert await redis_storage.finish("w1", done, now=T0 + 1) == [parent.id]
    assert await redis_storage.claim("w1", 10, 30, now=T0 + 2) == []
    failed = await redis_storage.get(child.id)
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert failed.error is not None and "run_at" in failed.error.message
