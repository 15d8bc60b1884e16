"""The process's :class:`BackgroundTaskManager` (its lifecycle, adding tasks, looking at them)
and :func:`add_background_task`, the call handlers and any code use to add one.

The manager records a task (a :class:`~qakeapi.core._background_jobs.Job`) and hands it to
the :class:`~qakeapi.core._background_runners.RunnerPool` of its running lifespan, which runs
it. Inside a request, ``add_background_task`` holds the task on the request's
:class:`~qakeapi.core._request_tasks.RequestTasks` until the response has been sent.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from time import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ..exceptions import ManagerNotRunning, TaskWaitTimeout, TooManyPendingTasks
from ..types import TERMINAL_STATUSES, TaskRecord, TaskStatus
from ._background_jobs import DESCRIPTIONS, NO_KWARGS, Job, describe_cached
from ._background_ref import BackgroundTaskRef, set_task_source
from ._background_runners import RunnerPool
from ._background_settings import BackgroundSettings
from ._background_table import TaskTable
from ._errors import single_exception
from ._inline_tasks import run_after_response
from ._options import NO_EXCEPTIONS, NO_RETRIES, TaskOptions, check_flag, task_options
from ._request_tasks import current_request_tasks

if TYPE_CHECKING:
    from ..events import EventBus

__all__ = ["RESERVED_OPTIONS", "BackgroundTaskManager", "add_background_task"]

logger = logging.getLogger("qakeapi.tasks")

RESERVED_OPTIONS = frozenset(
    {"wait", "timeout", "max_retries", "retries", "no_retry_on", "task_kwargs"})
"""Keyword names ``add_task`` keeps for itself; pass a task's own through ``task_kwargs``."""


class BackgroundTaskManager:
    """The process's one manager: ``BackgroundTaskManager()`` always returns it."""

    _instance: BackgroundTaskManager | None = None
    _open_pool: RunnerPool | None = None
    """The running manager's pool while it accepts tasks (else None): the one read by the
    per-task fast paths."""

    def __new__(cls) -> BackgroundTaskManager:
        instance = cls._instance
        if instance is None:
            instance = super().__new__(cls)
            instance._setup(BackgroundSettings())
            cls._instance = instance
            set_task_source(instance)
        return instance

    @classmethod
    def reset(cls) -> None:
        """Forget the process's manager (tests); it must not be running."""
        if cls._instance is not None and cls._instance._users:
            raise RuntimeError("the background task manager is running; stop it first")
        cls._instance = None
        set_task_source(None)

    def _setup(self, settings: BackgroundSettings) -> None:
        self.settings = settings
        self.tasks = TaskTable(settings.retain_finished, settings.retain_seconds)
        self._pool: RunnerPool | None = None
        """The runners of the running (or last) lifespan."""
        self._users = 0
        self._accepting = False
        prefix = f"bg-{os.getpid():x}-{os.urandom(3).hex()}-"
        self._new_id: Callable[[], str] = map(prefix.__add__, map(str, itertools.count(1))).__next__
        """The next task id, made by a C-level chain as it runs once per task; the random part
        keeps ids of restarted processes apart. A plain ``str``: the record and the table
        keep it, while the :class:`BackgroundTaskRef` a caller gets is made apart and dies
        with the caller's use of it. (A ``str`` subclass instance is tracked by the garbage
        collector, and records that outlive their request make it collect: one tracked
        object less per retained record is measurably fewer collections.)"""

    def configure(self, settings: BackgroundSettings | None = None, **changes: Any) -> None:
        """Change limits (only while stopped): ``manager.configure(retain_finished=100)``."""
        if self._users:
            raise RuntimeError("configure the background task manager before it starts")
        base = settings or self.settings
        fields = {name: getattr(base, name) for name in BackgroundSettings.__slots__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown background setting(s): {', '.join(sorted(unknown))}")
        fields.update(changes)
        self.settings = BackgroundSettings(**fields)
        self.tasks.retain_count = self.settings.retain_finished
        self.tasks.retain_seconds = self.settings.retain_seconds

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether tasks can be added (the lifespan runs and is not shutting down)."""
        return self._accepting

    @asynccontextmanager
    async def lifespan(
        self, events: EventBus | None = None, grace: float | None = None
    ) -> AsyncIterator[BackgroundTaskManager]:
        """Run the manager; on exit drain for ``grace`` seconds, then cancel what is left.

        Nested use (several apps in one process) shares the running manager."""
        if self._users:
            pool = self._pool
            assert pool is not None
            previous_events = pool.events
            if events is not None:
                pool.events = events
            self._users += 1
            try:
                yield self
            finally:
                self._users -= 1
                pool.events = previous_events
            return
        self._users = 1
        pool = self._pool = RunnerPool(self.settings, self.tasks, events, self._new_id)
        try:
            with single_exception():
                async with anyio.create_task_group() as tg:
                    pool.start(tg)
                    self._set_accepting(pool)
                    try:
                        yield self
                    finally:
                        self._set_accepting(None)
                        with anyio.CancelScope(shield=True):
                            await pool.drain(
                                self.settings.shutdown_grace if grace is None else grace)
        finally:
            pool.threads.warn_if_abandoned("the background task manager")
            self._set_accepting(None)
            self._users = 0

    def _set_accepting(self, pool: RunnerPool | None) -> None:
        self._accepting = pool is not None
        BackgroundTaskManager._open_pool = pool

    async def __aenter__(self) -> BackgroundTaskManager:
        self._cm = self.lifespan()
        return await self._cm.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._cm.__aexit__(exc_type, exc, tb)

    # -- adding ------------------------------------------------------------------------
    async def add_task(
        self,
        fn: Callable[..., Any],
        *args: Any,
        wait: bool = False,
        timeout: float | None = None,
        max_retries: int = NO_RETRIES,
        task_kwargs: Mapping[str, Any] | None = None,
        retries: int | None = None,
        no_retry_on: tuple[type[BaseException], ...] = NO_EXCEPTIONS,
        **kwargs: Any,
    ) -> BackgroundTaskRef:
        """Start ``fn(*args, **kwargs)`` now; returns its id, a :class:`BackgroundTaskRef`
        (after the task finished if ``wait``).

        ``wait``, ``timeout``, ``max_retries``, ``no_retry_on`` and ``task_kwargs`` are
        options (``retries`` is a deprecated alias of ``max_retries``); a task's own keyword
        argument with one of those names goes in ``task_kwargs``."""
        pool = BackgroundTaskManager._open_pool
        if (pool is not None and wait is False and timeout is None
                and max_retries is NO_RETRIES and task_kwargs is None and retries is None
                and no_retry_on is NO_EXCEPTIONS and pool.tasks is self.tasks):
            # The common call (no options, the manager running): _new_job and offer()
            # inlined, as they run once per task.
            try:
                name, is_async = DESCRIPTIONS[fn]
            except (KeyError, TypeError):
                name, is_async = describe_cached(fn)
            task_id = pool.new_id()
            job = Job(task_id, name, args, kwargs or NO_KWARGS, max_retries, timeout, time(),
                      fn, is_async, no_retry_on)
            pool.tasks[task_id] = job
            pool.live += 1
            if not pool.offer(job):
                await pool.submit(job)
            return BackgroundTaskRef(task_id)
        options = task_options(timeout, max_retries, no_retry_on, task_kwargs, retries)
        if wait is not False and wait is not True:
            check_flag("wait", wait)
        job = self._new_job(fn, args, kwargs, options)
        if wait:
            done = job.done = anyio.Event()
        pool = self._pool
        assert pool is not None
        if not pool.offer(job):
            await pool.submit(job)
        if wait:
            await done.wait()
        return BackgroundTaskRef(job.id)

    def _new_job(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 options: TaskOptions) -> Job:
        """Record a pending job (options checked) for the running lifespan's pool."""
        if not self._accepting:
            raise ManagerNotRunning(
                "the background task manager is not running: add tasks while the app runs, "
                "or inside `async with BackgroundTaskManager():`"
            )
        try:
            name, is_async = DESCRIPTIONS[fn]
        except (KeyError, TypeError):
            name, is_async = describe_cached(fn)
        if options.task_kwargs is not None:
            kwargs = {**kwargs, **options.task_kwargs}
        elif not kwargs:
            kwargs = NO_KWARGS
        task_id = self._new_id()
        job = Job(task_id, name, args, kwargs, options.max_retries, options.timeout,
                  time(), fn, is_async, options.no_retry_on)
        self.tasks[task_id] = job
        self._pool.live += 1  # type: ignore[union-attr]  # running, so a pool is there
        return job

    # -- inspecting and controlling ----------------------------------------------------
    @property
    def queued(self) -> int:
        """Tasks waiting in the pending queue for a runner (not the ones responses still
        hold, nor those whose ``add_task`` waits for room)."""
        return 0 if self._pool is None else len(self._pool.pending)

    def get(self, task_id: str) -> TaskRecord | None:
        return self.tasks.get(task_id)

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        """The record once the task has finished; TaskWaitTimeout after ``timeout``."""
        job = self.tasks[task_id]
        if job.status in TERMINAL_STATUSES or not isinstance(job, Job):
            return job
        if job.done is None:
            job.done = anyio.Event()
        with anyio.move_on_after(timeout):
            await job.done.wait()
            return job
        raise TaskWaitTimeout(f"task {task_id} did not finish within {timeout} s")

    async def cancel(self, task_id: str, reason: str = "cancelled") -> TaskRecord:
        """Cancel a pending or running task (no-op for a finished one)."""
        job = self.tasks[task_id]
        if job.status in TERMINAL_STATUSES or not isinstance(job, Job):
            return job
        if job.runner is not None and job.runner.scope is not None:
            job.cancel_reason = reason
            job.runner.cancel()
            await self.wait(task_id)
        elif self._pool is not None:
            self._pool.withdraw(job)
            self._pool.finish_cancelled(job, reason)  # a held job is skipped when released
        return job

    def counts(self) -> dict[TaskStatus, int]:
        """Records by status (finished ones as far as retention keeps them)."""
        return self.tasks.counts()


async def add_background_task(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None = None,
    max_retries: int = NO_RETRIES,
    task_kwargs: Mapping[str, Any] | None = None,
    retries: int | None = None,
    no_retry_on: tuple[type[BaseException], ...] = NO_EXCEPTIONS,
    **kwargs: Any,
) -> BackgroundTaskRef:
    """Run ``fn(*args, **kwargs)`` in the background; returns the task id at once.

    Inside a request the task starts after the response has been sent (and is dropped if the
    handler raises); elsewhere it starts now. ``timeout``, ``max_retries``, ``no_retry_on``
    and ``task_kwargs`` are options (see :meth:`BackgroundTaskManager.add_task`)."""
    holder = current_request_tasks.get()
    pool = BackgroundTaskManager._open_pool
    if (pool is not None and holder is not None and holder.open and timeout is None
            and max_retries is NO_RETRIES and task_kwargs is None and retries is None
            and no_retry_on is NO_EXCEPTIONS
            and ((events := pool.events) is None or not events.active)
            and len(pool.pending) + pool.held < pool.max_pending
            and ((owner := holder.held_owner) is None or owner is pool)):
        # The common call, inside a request of a running app with no options: the steps of
        # _new_job and of the held path below inlined, as they run once per task.
        try:
            name, is_async = DESCRIPTIONS[fn]
        except (KeyError, TypeError):
            name, is_async = describe_cached(fn)
        task_id = pool.new_id()
        job = Job(task_id, name, args, kwargs or NO_KWARGS, max_retries, timeout, time(), fn,
                  is_async, no_retry_on)
        pool.tasks[task_id] = job
        pool.live += 1
        pool.held += 1
        if owner is None:
            holder.held = [job]
            holder.held_owner = pool
        else:
            holder.held.append(job)  # type: ignore[union-attr]  # an owner holds a list
        return BackgroundTaskRef(task_id)
    manager = BackgroundTaskManager._instance
    options = task_options(timeout, max_retries, no_retry_on, task_kwargs, retries)
    if manager is None:
        manager = BackgroundTaskManager()
    if holder is None or not holder.open:
        job = manager._new_job(fn, args, kwargs, options)
        pool = manager._pool
        assert pool is not None
        if not pool.offer(job):
            await pool.submit(job)
        return BackgroundTaskRef(job.id)
    if not manager._users:  # served without its lifespan: run inside the request
        return BackgroundTaskRef(run_after_response(holder, fn, args, kwargs, options))
    job = manager._new_job(fn, args, kwargs, options)
    pool = manager._pool
    assert pool is not None
    # Held until the response has been sent; held tasks count against max_pending. A full
    # queue makes the handler wait for room (backpressure on the requests), since releasing
    # a response's tasks can't wait; held tasks that still fill it can't drain before their
    # responses, so the request is refused.
    limit = manager.settings.max_pending
    if len(pool.pending) + pool.held >= limit:
        if not await pool.wait_for_room(job):
            return BackgroundTaskRef(job.id)  # the manager stopped: recorded cancelled
        if len(pool.pending) + pool.held >= limit:
            reason = (f"too many background tasks: {pool.held} held by open "
                      f"requests and {len(pool.pending)} pending reach max_pending={limit}")
            pool.finish_cancelled(job, reason)
            raise TooManyPendingTasks(reason)
    if not holder.hold(job, pool):
        pool.finish_cancelled(job, "a request can't hold tasks of two managers")
        raise RuntimeError("background tasks of two managers in one request")
    pool.held += 1
    if pool.events is not None and pool.events.active:
        await pool.created(job)
    return BackgroundTaskRef(job.id)
