"""In-process background tasks: ``await add_background_task(fn, *args, **kwargs)``.

One :class:`BackgroundTaskManager` per process runs tasks on its own anyio task group: a
fixed pool of runner coroutines takes jobs from a bounded pending queue (``add_task`` waits
for room: backpressure), coroutines run on the event loop, plain functions on the manager's
own thread limiter. Records of finished tasks are kept up to a count and an age.

Inside a request, ``add_background_task`` holds the task until the response has been sent
(and drops it if the handler raises); outside a request the task starts at once. Tasks live
in this process only: use queued tasks for work that must survive a restart.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ..constants import OPTION_MAX_RETRIES
from ..exceptions import ManagerNotRunning, TaskWaitTimeout, TooManyPendingTasks
from ..types import TERMINAL_STATUSES, TaskErrorInfo, TaskRecord, TaskStatus
from ._inline_tasks import run_after_response
from .background_jobs import DESCRIPTIONS, Job, Runner, TaskTable, describe_cached
from .background_ref import BackgroundTaskRef
from .background_settings import BackgroundSettings
from .errors import single_exception
from .isolation import ThreadSlots, is_cancellation
from .options import check_count, check_flag, check_seconds, check_task_kwargs
from .request_tasks import RequestTasks, current_request_tasks
from .retry import decide_retry

if TYPE_CHECKING:
    from ..events import EventBus

__all__ = [
    "RESERVED_OPTIONS",
    "BackgroundSettings",
    "BackgroundTaskManager",
    "BackgroundTaskRef",
    "TaskTable",
    "add_background_task",
]

logger = logging.getLogger("qakeapi.tasks")

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_SUCCEEDED = TaskStatus.SUCCEEDED
_END_EVENTS = {status: f"task:{status.value}" for status in TaskStatus}

RESERVED_OPTIONS = frozenset({"wait", "timeout", "max_retries", "retries", "task_kwargs"})
"""Keyword names ``add_task`` keeps for itself; pass a task's own through ``task_kwargs``."""


def _max_retries(max_retries: int, retries: int | None) -> int:
    """``max_retries``, or the deprecated ``retries`` it replaces (not both)."""
    if retries is None:
        return max_retries
    if max_retries:
        raise TypeError("give max_retries or its deprecated alias retries, not both")
    warnings.warn("the background task option retries is deprecated: use max_retries, "
                  "the name queued tasks use", DeprecationWarning, stacklevel=3)
    return check_count("retries", retries)


class BackgroundTaskManager:
    """The process's one manager: ``BackgroundTaskManager()`` always returns it."""

    _instance: BackgroundTaskManager | None = None

    def __new__(cls) -> BackgroundTaskManager:
        instance = cls._instance
        if instance is None:
            instance = super().__new__(cls)
            instance._setup(BackgroundSettings())
            cls._instance = instance
        return instance

    @classmethod
    def reset(cls) -> None:
        """Forget the process's manager (tests); it must not be running."""
        if cls._instance is not None and cls._instance._users:
            raise RuntimeError("the background task manager is running; stop it first")
        cls._instance = None

    def _setup(self, settings: BackgroundSettings) -> None:
        self.settings = settings
        self.tasks = TaskTable(settings.retain_finished, settings.retain_seconds)
        self._live = 0
        """Tasks added and not finished (pending, held or running)."""
        self._pending: deque[Job] = deque()
        self._idle: list[anyio.Event] = []
        self._new_event: Callable[[], anyio.Event] = anyio.Event
        self._waking = 0
        self._room_waiters: list[anyio.Event] = []
        self._all_done: anyio.Event | None = None
        self._threads: ThreadSlots | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._events: EventBus | None = None
        self._users = 0
        self._accepting = False
        self._stopping = False
        self._ids = itertools.count(1)
        self._id_prefix = f"bg-{os.getpid():x}-{os.urandom(3).hex()}-"

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
        return self._accepting

    @asynccontextmanager
    async def lifespan(
        self, events: EventBus | None = None, grace: float | None = None
    ) -> AsyncIterator[BackgroundTaskManager]:
        """Run the manager; on exit drain for ``grace`` seconds, then cancel what is left.

        Nested use (several apps in one process) shares the running manager."""
        previous_events = self._events
        if events is not None:
            self._events = events
        if self._users:
            self._users += 1
            try:
                yield self
            finally:
                self._users -= 1
                self._events = previous_events
            return
        self._users = 1
        self._stopping = False
        threads = self._threads = ThreadSlots(self.settings.thread_limit)
        # The running backend's Event class: creating it directly skips anyio's backend
        # lookup, which costs more than the event itself on the runners' idle path.
        self._new_event = type(anyio.Event())
        try:
            with single_exception():
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    for _ in range(self.settings.max_concurrency):
                        tg.start_soon(self._run_forever)
                    self._accepting = True
                    try:
                        yield self
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self._shutdown(
                                self.settings.shutdown_grace if grace is None else grace
                            )
        finally:
            threads.warn_if_abandoned("the background task manager")
            self._task_group = None
            self._threads = None
            self._accepting = False
            self._users = 0
            self._events = previous_events

    async def __aenter__(self) -> BackgroundTaskManager:
        self._cm = self.lifespan()
        return await self._cm.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._cm.__aexit__(exc_type, exc, tb)

    async def _shutdown(self, grace: float) -> None:
        self._accepting = False
        if self._live:
            self._all_done = anyio.Event()
            with anyio.move_on_after(grace):
                await self._all_done.wait()
        dropped = [job for job in self._pending if job.status not in TERMINAL_STATUSES]
        for job in dropped:
            self._finish_cancelled(job, "shutdown: not started within the grace period")
        self._pending.clear()
        for job in self._unfinished():
            if job.runner is not None and job.runner.scope is not None:
                job.cancel_reason = "shutdown: still running after the grace period"
                job.runner.cancel()
            elif job.status is TaskStatus.PENDING:
                self._finish_cancelled(job, "shutdown: the manager stopped")
                dropped.append(job)
        for job in dropped:
            logger.warning("background task %s (%s) cancelled: %s", job.id, job.name,
                           job.cancel_reason)
        self._stopping = True
        for waiter in self._idle + self._room_waiters:
            waiter.set()
        self._idle.clear()
        self._room_waiters.clear()

    def _unfinished(self) -> list[Job]:
        return [job for job in self.tasks.values()
                if isinstance(job, Job) and job.status not in TERMINAL_STATUSES]

    # -- adding ------------------------------------------------------------------------
    async def add_task(
        self,
        fn: Callable[..., Any],
        *args: Any,
        wait: bool = False,
        timeout: float | None = None,
        max_retries: int = 0,
        task_kwargs: Mapping[str, Any] | None = None,
        retries: int | None = None,
        **kwargs: Any,
    ) -> BackgroundTaskRef:
        """Start ``fn(*args, **kwargs)`` now; returns its id, a :class:`BackgroundTaskRef`
        (after the task finished if ``wait``).

        ``wait``, ``timeout``, ``max_retries`` and ``task_kwargs`` are options (``retries``
        is a deprecated alias of ``max_retries``); a task's own keyword argument with one of
        those names goes in ``task_kwargs``."""
        if wait is not False and wait is not True:
            check_flag("wait", wait)
        if retries is not None:
            max_retries = _max_retries(max_retries, retries)
        job = self._new_job(fn, args, kwargs, timeout, max_retries, task_kwargs)
        if wait:
            job.done = self._new_event()
        await self._submit(job)
        if wait:
            assert job.done is not None
            await job.done.wait()
        return job.id

    def _new_job(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 timeout: float | None, retries: int,
                 task_kwargs: Mapping[str, Any] | None) -> Job:
        if not self._accepting:
            raise ManagerNotRunning(
                "the background task manager is not running: add tasks while the app runs, "
                "or inside `async with BackgroundTaskManager():`"
            )
        try:
            name, is_async = DESCRIPTIONS[fn]
        except (KeyError, TypeError):
            if not callable(fn):
                raise TypeError(f"a background task must be callable, got {fn!r}") from None
            name, is_async = describe_cached(fn)
        if timeout is not None:
            timeout = check_seconds("timeout", timeout) or None
        if type(retries) is not int or not 0 <= retries <= OPTION_MAX_RETRIES:
            retries = check_count("max_retries", retries)
        if task_kwargs is not None:
            kwargs = {**kwargs, **check_task_kwargs(task_kwargs)}
        task_id = BackgroundTaskRef(f"{self._id_prefix}{next(self._ids)}")
        job = Job(task_id, name, args, kwargs, retries, timeout, fn, is_async)
        self.tasks[task_id] = job
        self._live += 1
        return job

    async def _wait_for_room(self, job: Job) -> bool:
        """Wait until the pending queue has drained to half; False (``job`` recorded
        cancelled) if the manager stops first."""
        try:
            while len(self._pending) > self.settings.max_pending // 2:
                if self._stopping:
                    self._finish_cancelled(job, "shutdown: no room before the manager stopped")
                    return False
                room = self._new_event()
                self._room_waiters.append(room)
                await room.wait()
        except BaseException:
            self._finish_cancelled(job, "cancelled while waiting for room")
            raise
        return True

    async def _submit(self, job: Job) -> None:
        pending = self._pending
        if len(pending) >= self.settings.max_pending and not await self._wait_for_room(job):
            return
        pending.append(job)
        if self._idle and not self._waking:
            self._wake_one()
        if self._events is not None and self._events.active:
            await self._created(job)

    async def _created(self, job: Job) -> None:
        events = self._events
        if events is not None and events.has_listeners("task:created"):
            await events.emit("task:created", job)

    def start_held(self, jobs: list[Job]) -> None:
        """The response that held ``jobs`` has been sent: start them."""
        if self._stopping or self._task_group is None:
            for job in jobs:
                self._finish_cancelled(job, "the manager stopped before the response was sent")
            return
        pending = self._pending
        pending.extend(jobs)
        if self._idle and not self._waking:
            self._wake_one()

    def drop_held(self, jobs: list[Job], reason: str) -> None:
        """The handler that held ``jobs`` raised: record them cancelled."""
        for job in jobs:
            logger.warning("background task %s (%s) dropped: %s", job.id, job.name, reason)
            self._finish_cancelled(job, reason)

    def _wake_one(self) -> None:
        """Wake one idle runner. Runners wake in a chain: a woken runner that takes a job and
        still sees pending ones wakes the next, so a burst of quick tasks costs a wake or two
        while slow tasks still start side by side, one loop iteration apart."""
        self._waking += 1
        self._idle.pop().set()

    # -- running -----------------------------------------------------------------------
    def _made_room(self) -> None:
        if len(self._pending) <= self.settings.max_pending // 2:
            for waiter in self._room_waiters:
                waiter.set()
            self._room_waiters.clear()

    async def _run_forever(self) -> None:
        runner = Runner()
        pending = self._pending
        while not self._stopping:
            with anyio.CancelScope() as scope:
                runner.scope = scope
                runner.cancelled = False
                while not runner.cancelled:
                    if not pending:
                        if self._stopping:
                            return
                        idle = self._new_event()
                        self._idle.append(idle)
                        await idle.wait()
                        if self._waking:
                            self._waking -= 1
                        continue
                    job = pending.popleft()
                    if pending and self._idle and not self._waking:
                        self._wake_one()
                    if self._room_waiters:
                        self._made_room()
                    if job.status is not _PENDING:
                        continue  # cancelled while held by its request
                    runner.job = job
                    job.runner = runner
                    if job.is_async and job.timeout is None and not job.max_retries and (
                        self._events is None or not self._events.active
                    ):
                        # The common case, inline: one attempt, no deadline, no listeners.
                        job.status = _RUNNING
                        job.attempts = 1
                        job.started_at = time.time()
                        try:
                            result = await job.fn(*job.args, **job.kwargs)
                        except Exception as exc:
                            self._fail(job, exc)
                        except BaseException as exc:
                            if is_cancellation(exc):
                                raise
                            self._fail(job, exc)
                        else:
                            self._finish(job, _SUCCEEDED, result, None)
                        if runner.cancelled:
                            self._pending_emit(job)
                    else:
                        await self._run_job(job, runner, scope)
                    runner.job = None
            interrupted = runner.job
            runner.job = None
            runner.scope = None
            if interrupted is not None and interrupted.status not in TERMINAL_STATUSES:
                self._after_cancel(interrupted)
                await self._emit_end(interrupted)

    def _fail(self, job: Job, exc: BaseException) -> None:
        self._finish(job, TaskStatus.FAILED, None, TaskErrorInfo.from_exception(exc))
        logger.error("background task %s (%s) failed", job.id, job.name,
                     exc_info=(type(exc), exc, exc.__traceback__))

    async def _run_job(self, job: Job, runner: Runner, scope: anyio.CancelScope) -> None:
        events = self._events
        while True:
            job.status = _RUNNING
            job.attempts += 1
            job.started_at = time.time()
            if events is not None and events.has_listeners("task:started"):
                await events.emit("task:started", job)
            if job.timeout is not None:
                scope.deadline = anyio.current_time() + job.timeout
            try:
                if job.is_async:
                    result = await job.fn(*job.args, **job.kwargs)
                else:
                    assert self._threads is not None
                    result = await self._threads.run(
                        functools.partial(job.fn, *job.args, **job.kwargs))
            except BaseException as exc:
                if not isinstance(exc, Exception) and is_cancellation(exc):
                    raise
                if job.timeout is not None:
                    scope.deadline = float("inf")
                if job.max_retries and not scope.cancel_called and await self._retry(job, exc):
                    continue
                self._fail(job, exc)
            else:
                if job.timeout is not None:
                    scope.deadline = float("inf")
                self._finish(job, _SUCCEEDED, result, None)
            if runner.cancelled:
                # A cancel() that arrived as the task ended: leave the scope before awaiting.
                self._pending_emit(job)
                return
            if events is not None and events.has_listeners(_END_EVENTS[job.status]):
                await events.emit(_END_EVENTS[job.status], job)
            return

    async def _retry(self, job: Job, exc: BaseException) -> bool:
        """Whether the failed attempt runs again (the queued tasks' policy: backoff with
        jitter, ``NoRetry`` and ``Retry(delay)`` honoured); waits out the delay first."""
        settings = self.settings
        decision = decide_retry(exc, attempts=job.attempts, max_retries=job.max_retries,
                                no_retry_on=(), base_delay=settings.retry_base_delay,
                                max_delay=settings.retry_max_delay)
        if not decision.retry:
            return False
        job.error = TaskErrorInfo.from_exception(exc)
        job.status = _PENDING
        job.run_at = time.time() + decision.delay
        logger.warning("background task %s (%s) attempt %d failed, retrying in %.2f s: %r",
                       job.id, job.name, job.attempts, decision.delay, exc)
        events = self._events
        if events is not None and events.has_listeners("task:retrying"):
            await events.emit("task:retrying", job)
        await anyio.sleep(decision.delay)
        job.run_at = None
        return True

    def _pending_emit(self, job: Job) -> None:
        if self._task_group is not None and self._events is not None:
            self._task_group.start_soon(self._emit_end, job)

    async def _emit_end(self, job: Job) -> None:
        events = self._events
        if events is None:
            return
        name = _END_EVENTS[job.status]
        if events.has_listeners(name):
            await events.emit(name, job)

    def _after_cancel(self, job: Job) -> None:
        if job.cancel_reason is None and job.timeout is not None:
            error = TaskErrorInfo("TimeoutError", f"timed out after {job.timeout} s",
                                  timed_out=True)
            self._finish(job, TaskStatus.FAILED, None, error)
            logger.error("background task %s (%s) timed out after %s s", job.id,
                         job.name, job.timeout)
            return
        self._finish(job, TaskStatus.CANCELLED, None, None)
        logger.warning("background task %s (%s) cancelled: %s", job.id, job.name,
                       job.cancel_reason)

    def _finish(self, job: Job, status: TaskStatus, result: Any,
                error: TaskErrorInfo | None) -> None:
        job.status = status
        job.result = result
        job.error = error
        now = job.finished_at = time.time()
        job.runner = None
        self._live -= 1
        if job.done is not None:
            job.done.set()
        self.tasks.finished(job.id, now)
        if self._all_done is not None and not self._live:
            self._all_done.set()

    def _finish_cancelled(self, job: Job, reason: str) -> None:
        if job.status in TERMINAL_STATUSES:
            return
        job.cancel_reason = reason
        self._finish(job, TaskStatus.CANCELLED, None, None)
        self._pending_emit(job)

    # -- inspecting and controlling ----------------------------------------------------
    def get(self, task_id: str) -> TaskRecord | None:
        return self.tasks.get(task_id)

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        """The record once the task has finished; TaskWaitTimeout after ``timeout``."""
        job = self.tasks[task_id]
        if job.status in TERMINAL_STATUSES or not isinstance(job, Job):
            return job
        if job.done is None:
            job.done = self._new_event()
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
        else:
            with suppress(ValueError):
                self._pending.remove(job)
            self._finish_cancelled(job, reason)  # a held job is skipped when released
        return job

    def counts(self) -> dict[TaskStatus, int]:
        """Records by status (finished ones as far as retention keeps them)."""
        return self.tasks.counts()


async def add_background_task(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None = None,
    max_retries: int = 0,
    task_kwargs: Mapping[str, Any] | None = None,
    retries: int | None = None,
    **kwargs: Any,
) -> BackgroundTaskRef:
    """Run ``fn(*args, **kwargs)`` in the background; returns the task id at once.

    Inside a request the task starts after the response has been sent (and is dropped if the
    handler raises); elsewhere it starts now. ``timeout``, ``max_retries`` and
    ``task_kwargs`` are options (see :meth:`BackgroundTaskManager.add_task`)."""
    manager = BackgroundTaskManager._instance or BackgroundTaskManager()
    if retries is not None:
        max_retries = _max_retries(max_retries, retries)
    holder = current_request_tasks.get()
    if not manager._users and holder is not None and holder.open:  # no lifespan ran
        return BackgroundTaskRef(run_after_response(
            holder, fn, args, kwargs, timeout, max_retries, task_kwargs))
    job = manager._new_job(fn, args, kwargs, timeout, max_retries, task_kwargs)
    if holder is None or not holder.open:
        await manager._submit(job)
        return job.id
    # Held until the response has been sent; held tasks count against max_pending. A full
    # queue makes the handler wait for room (backpressure on the requests), since releasing
    # a response's tasks can't wait; held tasks that still fill it can't drain before their
    # responses, so the request is refused.
    limit = manager.settings.max_pending
    if len(manager._pending) + RequestTasks.held_total >= limit:
        if not await manager._wait_for_room(job):
            return job.id  # the manager stopped: the task is recorded cancelled
        if len(manager._pending) + RequestTasks.held_total >= limit:
            reason = (f"too many background tasks: {RequestTasks.held_total} held by open "
                      f"requests and {len(manager._pending)} pending reach max_pending={limit}")
            manager._finish_cancelled(job, reason)
            raise TooManyPendingTasks(reason)
    try:
        holder.hold(job, manager)
    except RuntimeError:
        manager._finish_cancelled(job, "a request can't hold tasks of two managers")
        raise
    if manager._events is not None and manager._events.active:
        await manager._created(job)
    return job.id
