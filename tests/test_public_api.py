"""The public surface: what ``qakeapi`` exports, and the seed's import paths."""

from __future__ import annotations

import inspect

import qakeapi


def test_all_is_exactly_the_public_names() -> None:
    public = {name for name in vars(qakeapi) if not name.startswith("_")} - {"annotations"}
    modules = {name for name, value in vars(qakeapi).items() if inspect.ismodule(value)}
    assert set(qakeapi.__all__) - {"__version__"} == public - modules
    assert sorted(qakeapi.__all__, key=str.lower) == sorted(set(qakeapi.__all__), key=str.lower)


def test_seed_import_paths() -> None:
    from qakeapi.core.background import BackgroundTaskManager, add_background_task
    from qakeapi.dependencies import Inject
    from qakeapi.queued_tasks import QueuedTasks, get_context, getLogger, set_context

    assert qakeapi.Inject is Inject and qakeapi.QueuedTasks is QueuedTasks
    assert add_background_task is qakeapi.add_background_task
    assert BackgroundTaskManager() is qakeapi.BackgroundTaskManager()
    assert (set_context, get_context, getLogger) == (
        qakeapi.set_context, qakeapi.get_context, qakeapi.getLogger)


def test_any_asgi_app_imports_the_task_protocol_from_the_package() -> None:
    from qakeapi import tasks_asgi
    from qakeapi.core import background

    for name in ("TaskMiddleware", "tasks_lifespan", "queued_tasks_dependency"):
        assert getattr(qakeapi, name) is getattr(tasks_asgi, name)
        assert name in qakeapi.__all__
    assert qakeapi.BackgroundTaskRef is background.BackgroundTaskRef
    assert "BackgroundTaskRef" in qakeapi.__all__

def test_exception_hierarchy_matches_the_docstring() -> None:
    from qakeapi import exceptions

    doc = exceptions.__doc__ or ""
    for name in exceptions.__all__:
        assert name in doc, name
    for name in ("TaskNotFound", "ConfigurationError", "BackendUnavailable"):
        assert issubclass(getattr(exceptions, name), exceptions.QakeAPIError)
    assert issubclass(exceptions.TaskNotFound, KeyError)
    assert issubclass(exceptions.SerializationError, TypeError)


def test_package_is_typed() -> None:
    from pathlib import Path

    assert (Path(qakeapi.__file__).parent / "py.typed").exists()
