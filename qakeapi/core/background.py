"""In-process background tasks: ``await add_background_task(fn, *args, **kwargs)``.

One :class:`BackgroundTaskManager` per process runs tasks on its own anyio task group: a
fixed pool of runner coroutines takes jobs from a bounded pending queue (``add_task`` waits
for room: backpressure), coroutines run on the event loop, plain functions on the manager's
own thread limiter. Records of finished tasks are kept up to a count and an age.

Inside a request, ``add_background_task`` holds the task until the response has been sent
(and drops it if the handler raises); outside a request the task starts at once. Tasks live
in this process only: use queued tasks for work that must survive a restart.

This module is the public import path; the parts live in ``background_manager`` (the manager
and ``add_background_task``), ``background_runners`` (the runner loop), ``background_jobs``,
``background_table``, ``background_ref`` and ``background_settings``.
"""

from __future__ import annotations

from ._background_manager import RESERVED_OPTIONS, BackgroundTaskManager, add_background_task
from ._background_ref import BackgroundTaskRef
from ._background_settings import BackgroundSettings
from ._background_table import TaskTable

__all__ = [
    "RESERVED_OPTIONS",
    "BackgroundSettings",
    "BackgroundTaskManager",
    "BackgroundTaskRef",
    "TaskTable",
    "add_background_task",
]
