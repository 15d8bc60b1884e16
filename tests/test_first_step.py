"""``run_watching`` awaits a coroutine as ``await`` does, and says when it first suspends."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from qakeapi.core._first_step import run_watching

pytestmark = pytest.mark.anyio


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_a_coroutine_that_never_awaits_is_not_reported() -> None:
    async def quick(x: int) -> int:
        return x * 2

    calls = Calls()
    assert await run_watching(quick(21), calls) == 42
    assert calls.count == 0


async def test_a_coroutine_that_awaits_is_reported_once_and_gets_its_values() -> None:
    send, receive = anyio.create_memory_object_stream[int](1)

    async def waits() -> int:
        total = 0
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        async with receive:
            total += await receive.receive()
        return total

    calls = Calls()
    async with anyio.create_task_group() as tg:
        async def feed() -> None:
            async with send:
                await send.send(7)

        tg.start_soon(feed)
        assert await run_watching(waits(), calls) == 7
    assert calls.count == 1


async def test_exceptions_come_out_as_from_await() -> None:
    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise KeyError("boom")

    async def fails_at_once() -> None:
        raise ValueError("at once")

    calls = Calls()
    with pytest.raises(KeyError, match="boom"):
        await run_watching(fails(), calls)
    with pytest.raises(ValueError, match="at once"):
        await run_watching(fails_at_once(), calls)
    assert calls.count == 1


async def test_cancellation_reaches_the_coroutine_and_its_cleanup_runs() -> None:
    cleaned: list[str] = []

    async def sleeps() -> None:
        try:
            await anyio.sleep(60)
        finally:
            cleaned.append("done")

    calls = Calls()
    with anyio.move_on_after(0.05) as scope:
        await run_watching(sleeps(), calls)
    assert scope.cancelled_caught
    assert cleaned == ["done"]
    assert calls.count == 1


async def test_an_abandoned_watch_closes_the_coroutine() -> None:
    cleaned: list[str] = []

    async def sleeps() -> None:
        try:
            await anyio.sleep(60)
        finally:
            cleaned.append("closed")

    calls = Calls()
    watch = run_watching(sleeps(), calls)
    next(watch)  # type: ignore[call-overload]  # the first step: it suspends in the sleep
    assert calls.count == 1
    watch.close()
    assert cleaned == ["closed"]
