"""Background tasks of an app served without its lifespan: run after the response.

FastAPI's ``TestClient(app)`` without ``with``, or an app whose server skips the lifespan,
never starts the :class:`~qakeapi.core.background.BackgroundTaskManager`. Rather than fail
the request, ``add_background_task`` then keeps the call on the request's
:class:`~qakeapi.core._request_tasks.RequestTasks`, and the task middleware runs it once the
response has been sent, inside the same ASGI call, as Starlette runs its own background
tasks: one after the other, once, with the ``timeout`` honoured and no record kept.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from ._background_jobs import describe_cached
from ._options import TaskOptions
from ._request_tasks import RequestTasks

__all__ = ["run_after_response"]

logger = logging.getLogger("qakeapi.tasks")

_ids = itertools.count(1)
_warned = False

WARNING = (
    "the background task manager is not running (the app is served without its lifespan, "
    "e.g. TestClient(app) without `with`): background tasks run after the response inside "
    "the request, one at a time, without retries or records. Run the app's lifespan "
    "(`with TestClient(app) as client:`, or a server with lifespan on) to run them on the "
    "manager."
)


def run_after_response(holder: RequestTasks, fn: Callable[..., Any], args: tuple[Any, ...],
                       kwargs: dict[str, Any], options: TaskOptions) -> str:
    """Keep ``fn(*args, **kwargs)`` on ``holder`` to run after the response; its id.

    ``options`` have been checked (``max_retries`` and ``no_retry_on`` have nothing to do
    here: the task runs once)."""
    global _warned
    name, is_async = describe_cached(fn)
    if options.task_kwargs is not None:
        kwargs = {**kwargs, **options.task_kwargs}
    if not _warned:
        _warned = True
        logger.warning(WARNING)
    call = functools.partial(fn, *args, **kwargs)
    timeout = options.timeout

    async def run() -> None:
        with anyio.fail_after(timeout):
            if is_async:
                await call()
            else:
                await anyio.to_thread.run_sync(call)

    holder.run_after_response(run)
    return f"inline-{next(_ids)}-{name}"
