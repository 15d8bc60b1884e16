"""Events: patterns, sync/async listeners, isolation of failing listeners."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from qakeapi import EventBus, QakeAPI

pytestmark = pytest.mark.anyio


async def test_patterns_and_listener_shapes() -> None:
    bus = EventBus()
    seen: list[tuple[str, Any]] = []

    @bus.on("task:failed")
    def exact(data: Any) -> None:
        seen.append(("exact", data))

    @bus.on("task:*")
    async def prefix(name: str, data: Any) -> None:
        seen.append(("prefix:" + name, data))

    @bus.on("*")
    def everything(data: Any) -> None:
        seen.append(("all", data))

    await bus.emit("task:failed", 1)
    await bus.emit("user:created", 2)
    assert seen == [("exact", 1), ("prefix:task:failed", 1), ("all", 1), ("all", 2)]
    assert bus.has_listeners("task:started") and bus.has_listeners("other")
    bus.remove_listener("*", everything)
    assert not bus.has_listeners("other")


async def test_failing_listener_is_logged_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()
    after: list[Any] = []

    @app.on("order:*")
    async def broken(data: Any) -> None:
        raise RuntimeError("listener bug")

    @app.on("order:placed")
    def fine(data: Any) -> None:
        after.append(data)

    with caplog.at_level(logging.ERROR, logger="qakeapi.events"):
        await app.emit("order:placed", {"id": 1})
    assert after == [{"id": 1}]
    assert any("listener bug" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
async def test_a_listener_raising_a_base_exception_breaks_nothing(
        exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()
    after: list[Any] = []

    @app.on("task:failed")
    def exits(data: Any) -> None:
        raise exc

    @app.on("task:*")
    async def fine(data: Any) -> None:
        after.append(data)

    with caplog.at_level(logging.ERROR, logger="qakeapi.events"):
        await app.emit("task:failed", {"id": 1})
    assert after == [{"id": 1}]
    assert any(type(exc).__name__ in (r.exc_text or "") for r in caplog.records)


async def test_bad_listener_registration() -> None:
    bus = EventBus()
    with pytest.raises(TypeError):
        bus.add_listener("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bus.remove_listener("x", print)
