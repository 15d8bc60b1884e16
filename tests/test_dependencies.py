"""Inject(...): registered instances, factories, auto-built classes, clear errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager, Inject, QakeAPI, QueuedTasks
from qakeapi.requests import Request
from qakeapi.testing import TestClient


class Settings:
    def __init__(self) -> None:
        self.name = "shop"


class NeedsArgs:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn


def test_builtin_and_user_dependencies() -> None:
    app = QakeAPI()
    made: list[int] = []

    async def current_user(request: Request) -> str:
        made.append(1)
        return request.headers.get("x-user", "anonymous")

    app.container.register(NeedsArgs, NeedsArgs("sqlite://"))

    @app.get("/")
    async def index(
        tasks: QueuedTasks = Inject(QueuedTasks),
        manager: BackgroundTaskManager = Inject(BackgroundTaskManager),
        settings: Settings = Inject(Settings),
        again: Settings = Inject(Settings),
        db: NeedsArgs = Inject(NeedsArgs),
        user: str = Inject(current_user),
    ) -> dict[str, Any]:
        return {
            "queue_is_apps": tasks is app.queued_tasks,
            "manager_is_singleton": manager is BackgroundTaskManager(),
            "settings_shared": settings is again,
            "name": settings.name,
            "dsn": db.dsn,
            "user": user,
        }

    with TestClient(app) as client:
        body = client.get("/", headers={"x-user": "ada"}).json()
    assert body == {"queue_is_apps": True, "manager_is_singleton": True,
                    "settings_shared": True, "name": "shop", "dsn": "sqlite://", "user": "ada"}
    assert made == [1]


def test_unprovidable_dependency_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()

    @app.get("/")
    async def index(db: NeedsArgs = Inject(NeedsArgs)) -> None:
        return None

    with caplog.at_level(logging.ERROR), TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert any("constructor needs arguments" in (r.exc_text or "") for r in caplog.records)


def test_factory_with_unfillable_parameter_is_refused() -> None:
    def factory(dsn: str) -> str:
        return dsn

    app = QakeAPI()
    with pytest.raises(TypeError, match="parameter 'dsn' can't be filled"):
        app.container.register_factory("db", factory)


def test_inject_needs_a_target() -> None:
    with pytest.raises(TypeError):
        Inject(None)
