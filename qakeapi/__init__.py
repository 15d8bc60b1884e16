"""qakeapi: an ASGI micro-framework whose background tasks grow into durable queued tasks.

(Temporary lazy exports while the package is assembled; the lead replaces this with explicit
imports at integration.)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "QakeAPI": "qakeapi.app",
    "Router": "qakeapi.routing",
    "Inject": "qakeapi.dependencies",
    "EventBus": "qakeapi.events",
    "add_background_task": "qakeapi.core.background",
    "BackgroundTaskManager": "qakeapi.core.background",
    "QueuedTasks": "qakeapi.queued_tasks",
    "TaskRef": "qakeapi.queued_tasks",
    "set_context": "qakeapi.queued_tasks",
    "get_context": "qakeapi.queued_tasks",
    "getLogger": "qakeapi.queued_tasks",
    "HTTPException": "qakeapi.exceptions",
    "Retry": "qakeapi.exceptions",
    "NoRetry": "qakeapi.exceptions",
    "TaskRecord": "qakeapi.types",
    "TaskStatus": "qakeapi.types",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qakeapi' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
