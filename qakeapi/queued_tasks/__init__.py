"""Queued tasks: durable tasks with dependencies, retries, progress and logs.

``tasks.add_task(fn, *args, parent=..., **kwargs)`` stores a task in the backend chosen by
``QUEUE_URL`` (``memory://``, ``sqlite:///path``, ``redis://host:port/db``); workers
(embedded in the app, or ``qakeapi queue start``, or a :class:`Worker` a script runs) run it.
``enqueue_id_range_tasks`` fans work over ids out into chunk tasks; ``iter_with_cursor`` lets
one resume where it stopped.
"""

from __future__ import annotations

from ..exceptions import NoRetry, Retry
from ._before_store import NewTask
from ._context import get_context, getLogger, set_context
from ._hooks import WorkerHooks
from ._id_range import enqueue_id_range_tasks, iter_with_cursor
from ._queue import RESERVED_OPTIONS, QueuedTasks
from ._ref import TaskRef
from ._registry import TaskRegistry
from ._settings import QueueSettings
from ._worker import Worker

__all__ = [
    "RESERVED_OPTIONS",
    "NewTask",
    "NoRetry",
    "QueueSettings",
    "QueuedTasks",
    "Retry",
    "TaskRef",
    "TaskRegistry",
    "Worker",
    "WorkerHooks",
    "enqueue_id_range_tasks",
    "getLogger",
    "get_context",
    "iter_with_cursor",
    "set_context",
]
