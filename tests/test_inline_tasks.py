"""An app served without its lifespan (``TestClient(app)`` without ``with``): background
tasks run after the response inside the request, as Starlette runs its own, instead of a
500 ``ManagerNotRunning``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from qakeapi import BackgroundTaskManager, QakeAPI, add_background_task
from qakeapi.core import _inline_tasks
from qakeapi.tasks_asgi import TaskMiddleware
from qakeapi.testing import TestClient


@pytest.fixture(autouse=True)
def no_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    BackgroundTaskManager.reset()
    monkeypatch.setattr(_inline_tasks, "_warned", False)
    yield
    BackgroundTaskManager.reset()


def fastapi_app(ran: list[str]) -> Any:
    app = FastAPI()
    app.add_middleware(TaskMiddleware)
    add_routes(app, ran)
    return app


def qakeapi_app(ran: list[str]) -> Any:
    app = QakeAPI()
    add_routes(app, ran)
    return app


def add_routes(app: Any, ran: list[str]) -> None:
    async def async_note(what: str) -> None:
        ran.append(f"async {what}")

    def sync_note(what: str) -> None:
        ran.append(f"sync {what}")

    @app.post("/signup")
    async def signup() -> dict[str, bool]:
        await add_background_task(async_note, "a")
        await add_background_task(sync_note, "b")
        ran.append("handler returned")
        return {"ok": True}

    @app.post("/boom")
    async def boom() -> None:
        await add_background_task(sync_note, "never")
        raise RuntimeError("handler bug")

    @app.post("/bad-option")
    async def bad_option() -> None:
        await add_background_task(sync_note, "never", timeout=-1)


@pytest.mark.parametrize("make_app", [fastapi_app, qakeapi_app])
def test_tasks_run_after_the_response_without_a_lifespan(
        make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []
    client = TestClient(make_app(ran), raise_server_exceptions=False)
    with caplog.at_level(logging.WARNING, logger="qakeapi.tasks"):
        for _ in range(2):
            response = client.post("/signup")
            assert (response.status_code, response.json()) == (200, {"ok": True})
        assert client.post("/boom").status_code == 500
        assert client.post("/bad-option").status_code == 500
    assert ran == ["handler returned", "async a", "sync b"] * 2
    warnings = [r for r in caplog.records if "lifespan" in r.getMessage()]
    assert len(warnings) == 1
    assert "with TestClient(app) as client" in warnings[0].getMessage()


def test_bad_options_are_still_refused_without_a_lifespan() -> None:
    client = TestClient(fastapi_app([]), raise_server_exceptions=True)
    with pytest.raises(ValueError, match="timeout"):
        client.post("/bad-option")


def test_the_fallback_checks_options_as_the_manager_does() -> None:
    """One check for both paths: no_retry_on is an option here too (not a keyword argument
    passed on to the task), refused when bad, and a good one is accepted."""
    ran: list[str] = []
    app = FastAPI()
    app.add_middleware(TaskMiddleware)

    async def note(what: str) -> None:
        ran.append(what)

    @app.post("/bad")
    async def bad() -> None:
        await add_background_task(note, "never", no_retry_on=("ValueError",))

    @app.post("/good")
    async def good() -> dict[str, bool]:
        await add_background_task(note, "ran", no_retry_on=(ValueError,), max_retries=2)
        return {"ok": True}

    client = TestClient(app, raise_server_exceptions=True)
    with pytest.raises(TypeError, match="no_retry_on must hold exception classes"):
        client.post("/bad")
    assert client.post("/good").json() == {"ok": True}
    assert ran == ["ran"]
