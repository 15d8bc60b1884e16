"""Module-level task functions for the queue tests (workers find tasks by module:name)."""

from __future__ import annotations

import datetime as dt
import decimal
import sys
import threading
import time
import uuid
from typing import Any

import anyio

from qakeapi.exceptions import NoRetry, Retry
from qakeapi.queued_tasks import get_context, getLogger, set_context

runs: dict[str, int] = {}
gates: dict[str, anyio.Event] = {}


class AuthError(Exception):
    pass


async def add(a: int, b: int) -> int:
    return a + b


def multiply(a: int, b: int) -> int:
    return a * b


async def echo(value: Any) -> Any:
    return value


async def types_roundtrip(when: dt.datetime, day: dt.date, key: uuid.UUID,
                          amount: decimal.Decimal, blob: bytes) -> dict[str, Any]:
    assert isinstance(when, dt.datetime) and isinstance(day, dt.date)
    assert isinstance(key, uuid.UUID) and isinstance(amount, decimal.Decimal)
    assert isinstance(blob, bytes)
    return {"when": when, "day": day, "key": key, "amount": amount, "blob": blob}


async def fail_times(key: str, times: int) -> str:
    runs[key] = runs.get(key, 0) + 1
    set_context("seen", runs[key])
    getLogger("tests.queue").info("attempt %d", runs[key])
    if runs[key] <= times:
        raise RuntimeError(f"failure {runs[key]}")
    return f"ok after {runs[key]}"


async def auth_fails(key: str) -> None:
    runs[key] = runs.get(key, 0) + 1
    raise AuthError("bad credentials")


async def no_retry(key: str) -> None:
    runs[key] = runs.get(key, 0) + 1
    raise NoRetry("permanent")


async def retry_later(key: str) -> str:
    runs[key] = runs.get(key, 0) + 1
    if runs[key] == 1:
        raise Retry(delay=0.05)
    return "second time"


async def wait_gate(key: str) -> str:
    set_context("progress", 50)
    set_context("stage.name", "waiting")
    getLogger("tests.queue").info("waiting at gate %s", key)
    await gates[key].wait()
    set_context("progress", 100)
    return "through"


async def sleep_for(seconds: float) -> str:
    await anyio.sleep(seconds)
    return "woke"


async def returns_object() -> Any:
    return object()


async def record_order(key: str, name: str) -> str:
    runs.setdefault(key + ":order", 0)
    order = runs[key + ":order"] = runs[key + ":order"] + 1
    set_context("order", order)
    return name


async def read_context_default() -> Any:
    return get_context("missing.key", "fallback")


async def retry_with(delay: str) -> None:
    raise Retry(delay=float(delay))


class Fatal(BaseException):
    """A custom BaseException, as some libraries define."""


async def exits(code: int) -> None:
    sys.exit(code)


def sync_exits(code: int) -> None:
    sys.exit(code)


async def raises_fatal() -> None:
    raise Fatal("fatal")


class ThreadGauge:
    """Threads inside :func:`sleep_in_thread` now, at most, and finished."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.ended = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1
            self.ended += 1


gauge = ThreadGauge()
thread_gates: dict[str, threading.Event] = {}


def sleep_in_thread(seconds: float, gate: str = "") -> None:
    gauge.enter()
    try:
        if gate:
            thread_gates[gate].wait(seconds)
        else:
            time.sleep(seconds)
    finally:
        gauge.leave()


def read_context(key: str) -> Any:
    set_context("seen", True)
    return get_context(key)
