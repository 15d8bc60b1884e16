"""Inject(...): registered instances, factories, auto-built classes, clear errors."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest

import qakeapi
from qakeapi import BackgroundTaskManager, Inject, QakeAPI, QueuedTasks
from qakeapi.dependencies import DependencyError
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


def test_unprovidable_dependency_stops_the_app_at_startup_naming_the_handler(
        caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()

    @app.get("/db")
    async def index(db: NeedsArgs = Inject(NeedsArgs)) -> None:
        return None

    with (caplog.at_level(logging.ERROR), pytest.raises(DependencyError) as caught,
          TestClient(app)):
        pass
    assert "index" in str(caught.value) and "/db" in str(caught.value)
    assert "constructor needs arguments" in str(caught.value)


def test_factory_with_unfillable_parameter_is_refused() -> None:
    def factory(dsn: str) -> str:
        return dsn

    app = QakeAPI()
    with pytest.raises(TypeError, match="parameter 'dsn' can't be filled"):
        app.container.register_factory("db", factory)


def test_inject_needs_a_target() -> None:
    with pytest.raises(TypeError):
        Inject(None)


def _imports(path: Path, module: str) -> set[str]:
    """Every qakeapi module ``module`` imports, anywhere in it (lazily or for typing too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("qakeapi")}


def test_dependencies_and_params_are_on_no_import_cycle() -> None:
    root = Path(qakeapi.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: _imports(path, name) & modules.keys() - {name}
             for name, path in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    for name in ("qakeapi.dependencies", "qakeapi._params", "qakeapi._inject"):
        assert not reaches(name, name), name

def test_inject_marker_and_error_are_one_set_of_names() -> None:
    from qakeapi import _params as params
    from qakeapi import dependencies

    marker = dependencies.Inject(Settings)
    assert isinstance(marker, dependencies.InjectMarker)
    assert issubclass(dependencies.DependencyError, LookupError)
    plan = params.plan_callable(lambda s=marker: s, path_params=())
    assert [p.default for p in plan.params] == [marker]
