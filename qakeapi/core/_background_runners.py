"""The background task manager's runners: a pending queue and a fixed pool of runner
coroutines that take jobs from it, run them (coroutines on the event loop, plain functions on
the pool's own thread slots), retry them and record how they ended.

One :class:`RunnerPool` serves one run of the manager's lifespan: the manager records a job,
hands it over with :meth:`RunnerPool.offer` / :meth:`RunnerPool.submit` (or
:meth:`RunnerPool.start_held` for the tasks a response held), and at the end of its lifespan
calls :meth:`RunnerPool.drain`.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable
from time import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from ..constants import BACKGROUND_YIELD_EVERY
from ..types import TERMINAL_STATUSES, TaskErrorInfo, TaskStatus
from ._background_jobs import NO_KWARGS, Job, Runner
from ._background_settings import BackgroundSettings
from ._background_table import TaskTable
from ._isolation import ThreadSlots, is_cancellation
from ._retry import decide_retry

if TYPE_CHECKING:
    from ..events import EventBus

__all__ = ["RunnerPool"]

logger = logging.getLogger("qakeapi.tasks")

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_SUCCEEDED = TaskStatus.SUCCEEDED
_END_EVENTS = {status: f"task:{status.value}" for status in TaskStatus}
_YIELD_AT = BACKGROUND_YIELD_EVERY - 1


class RunnerPool:
    """The pending queue (bounded: adders wait for room) and the runners that empty it."""

    def __init__(self, settings: BackgroundSettings, tasks: TaskTable,
                 events: EventBus | None, new_id: Callable[[], str]) -> None:
        self.settings = settings
        self.tasks = tasks
        self.new_id = new_id
        """The manager's id maker (``new_id()``: the next task id)."""
        self.max_pending = settings.max_pending
        self.events = events
        """Where task events go (``task:created``...); None for nowhere."""
        self.threads = ThreadSlots(settings.thread_limit)
        self.pending: deque[Job] = deque()
        """Jobs waiting for a runner, oldest first."""
        self.live = 0
        """Jobs recorded and not finished (pending, held by a request, or running)."""
        self.held = 0
        """Jobs held by open requests (they count against ``max_pending`` with the queue);
        whoever hands a job to a request's holder adds it here."""
        self.stopping = False
        self._max_pending = settings.max_pending
        self._room_at = settings.max_pending // 2
        """Adders waiting for room go on once the queue has drained to this."""
        self._idle: list[anyio.Event] = []
        self.wakes = 0
        """Idle runners woken so far (a figure for tests and profiling)."""
        self._waking = 0
        self._room_waiters: list[anyio.Event] = []
        self._all_done: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._taking = False
        """Started and not stopping: released jobs are queued (else recorded cancelled)."""

    def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start the runners on ``task_group`` (inside the running event loop)."""
        self._task_group = task_group
        self._taking = True
        for _ in range(self.settings.max_concurrency):
            task_group.start_soon(self._run_forever)

    # -- taking jobs -------------------------------------------------------------------
    def offer(self, job: Job) -> bool:
        """Queue ``job`` if that needs no awaiting (room in the queue, no event listeners, not
        the adder's turn to let the runners in); False, with nothing done, if it does: then
        ``await submit(job)``."""
        pending = self.pending
        queued = len(pending)
        if queued >= self._max_pending or queued % BACKGROUND_YIELD_EVERY == _YIELD_AT or (
                self.events is not None and self.events.active):
            return False
        pending.append(job)
        if self._idle and not self._waking:
            self._wake_one()
        return True

    async def submit(self, job: Job) -> None:
        """Queue ``job`` once there is room (recorded cancelled if the pool stops first),
        then emit ``task:created``."""
        if len(self.pending) >= self._max_pending and not await self.wait_for_room(job):
            return
        self.pending.append(job)
        if self._idle and not self._waking:
            self._wake_one()
        if len(self.pending) % BACKGROUND_YIELD_EVERY == 0:
            await anyio.lowlevel.cancel_shielded_checkpoint()  # added: not to be cancelled
        await self.created(job)

    async def created(self, job: Job) -> None:
        events = self.events
        if events is not None and events.has_listeners("task:created"):
            await events.emit("task:created", job)

    async def wait_for_room(self, job: Job) -> bool:
        """Wait until the queue has drained to half; False (``job`` recorded cancelled) if
        the pool stops first."""
        try:
            while len(self.pending) > self._room_at:
                if self.stopping:
                    self.finish_cancelled(job, "shutdown: no room before the manager stopped")
                    return False
                room = anyio.Event()
                self._room_waiters.append(room)
                await room.wait()
        except BaseException:
            self.finish_cancelled(job, "cancelled while waiting for room")
            raise
        return True

    def start_held(self, jobs: list[Job]) -> bool:
        """The response that held ``jobs`` has been sent: queue them at once, room or not
        (the request's holder calls this: the pool is the owner of its held jobs).

        True when the queue has grown past another BACKGROUND_YIELD_EVERY jobs: the caller
        should then let the runners in (requests whose handlers never wait would otherwise
        fill the queue before a runner gets its turn, as a loop of ``add_task`` would)."""
        count = len(jobs)
        self.held -= count
        if not self._taking:
            for job in jobs:
                self.finish_cancelled(job, "the manager stopped before the response was sent")
            return False
        pending = self.pending
        pending.extend(jobs)
        if self._idle and not self._waking:
            self._wake_one()
        # Crossed a multiple of BACKGROUND_YIELD_EVERY with these ``count`` jobs?
        return len(pending) % BACKGROUND_YIELD_EVERY < count

    def drop_held(self, jobs: list[Job], reason: str) -> None:
        """The handler that held ``jobs`` raised: record them cancelled."""
        self.held -= len(jobs)
        for job in jobs:
            logger.warning("background task %s (%s) dropped: %s", job.id, job.name, reason)
            self.finish_cancelled(job, reason)

    def withdraw(self, job: Job) -> None:
        """Take a job that has not started out of the queue (if it is there)."""
        try:
            self.pending.remove(job)
        except ValueError:
            return

    def _wake_one(self) -> None:
        """Wake one idle runner. Runners wake in a chain: a woken runner that takes a job and
        still sees pending ones wakes the next, so a burst of quick tasks costs a wake or two
        while slow tasks still start side by side, one loop iteration apart."""
        self._waking += 1
        self.wakes += 1
        self._idle.pop().set()

    def _made_room(self) -> None:
        for waiter in self._room_waiters:
            waiter.set()
        self._room_waiters.clear()

    # -- running -----------------------------------------------------------------------
    async def _run_forever(self) -> None:
        runner = Runner()
        pending = self.pending
        room_at = self._room_at
        tasks = self.tasks
        finished_ids = tasks.finished_ids
        while not self.stopping:
            with anyio.CancelScope() as scope:
                runner.scope = scope
                runner.cancelled = False
                # When the runner last finished a job or woke: the start time of the job it
                # takes next without awaiting in between (one clock read per job, not two).
                now = time()
                # runner.job stays on the last job when it ends (a finished job is never
                # interrupted: the check after the scope reads its status).
                while True:
                    if not pending:
                        if self.stopping:
                            return
                        idle = anyio.Event()
                        self._idle.append(idle)
                        await idle.wait()
                        if self._waking:
                            self._waking -= 1
                        if runner.cancelled:
                            break
                        now = time()
                        continue
                    job = pending.popleft()
                    if pending and self._idle and not self._waking:
                        self._wake_one()
                    if self._room_waiters and len(pending) <= room_at:
                        self._made_room()
                    if job.status is not _PENDING:
                        continue  # cancelled while held by its request
                    runner.job = job
                    job.runner = runner
                    if job.is_async and job.timeout is None and not job.max_retries and (
                        self.events is None or not self.events.active
                    ):
                        # The common case, inline: one attempt, no deadline, no listeners.
                        job.status = _RUNNING
                        job.attempts = 1
                        job.started_at = now
                        try:
                            if job.kwargs is NO_KWARGS:
                                result = await job.fn(*job.args)
                            else:
                                result = await job.fn(*job.args, **job.kwargs)
                        except Exception as exc:
                            self._fail(job, exc)
                            now = time()
                        except BaseException as exc:
                            if is_cancellation(exc):
                                raise
                            self._fail(job, exc)
                            now = time()
                        else:
                            # _finish(job, _SUCCEEDED, result, None) inlined (error is
                            # still None: no retries here).
                            job.status = _SUCCEEDED
                            job.result = result
                            now = job.finished_at = time()
                            self.live -= 1
                            if job.done is not None:
                                job.done.set()
                            # tasks.finished(job.id, now) inlined
                            finished_ids.append(job.id)
                            if len(finished_ids) > tasks.retain_count:
                                tasks.pop(finished_ids.popleft(), None)
                            if now >= tasks.next_age_check:
                                tasks.check_age(now)
                            if self._all_done is not None and not self.live:
                                self._all_done.set()
                        if runner.cancelled:
                            self._pending_emit(job)
                            break
                    else:
                        await self._run_job(job, runner, scope)
                        now = time()
                        if runner.cancelled:
                            break
            interrupted = runner.job
            runner.job = None
            runner.scope = None
            if interrupted is not None and interrupted.status not in TERMINAL_STATUSES:
                self._after_cancel(interrupted)
                await self._emit_end(interrupted)

    async def _run_job(self, job: Job, runner: Runner, scope: anyio.CancelScope) -> None:
        events = self.events
        while True:
            job.status = _RUNNING
            job.attempts += 1
            job.started_at = time()
            if events is not None and events.has_listeners("task:started"):
                await events.emit("task:started", job)
            if job.timeout is not None:
                scope.deadline = anyio.current_time() + job.timeout
            try:
                if job.is_async:
                    result = await job.fn(*job.args, **job.kwargs)
                else:
                    result = await self.threads.run(
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
        jitter; ``NoRetry``, ``no_retry_on`` and ``Retry(delay)`` honoured); waits out the
        delay first."""
        settings = self.settings
        decision = decide_retry(exc, attempts=job.attempts, max_retries=job.max_retries,
                                no_retry_on=job.no_retry_on,
                                base_delay=settings.retry_base_delay,
                                max_delay=settings.retry_max_delay)
        if not decision.retry:
            return False
        job.error = TaskErrorInfo.from_exception(exc)
        job.status = _PENDING
        job.run_at = time() + decision.delay
        logger.warning("background task %s (%s) attempt %d failed, retrying in %.2f s: %r",
                       job.id, job.name, job.attempts, decision.delay, exc)
        events = self.events
        if events is not None and events.has_listeners("task:retrying"):
            await events.emit("task:retrying", job)
        await anyio.sleep(decision.delay)
        job.run_at = None
        return True

    # -- ending ------------------------------------------------------------------------
    def _fail(self, job: Job, exc: BaseException) -> None:
        self._finish(job, TaskStatus.FAILED, None, TaskErrorInfo.from_exception(exc))
        logger.error("background task %s (%s) failed", job.id, job.name,
                     exc_info=(type(exc), exc, exc.__traceback__))

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
        now = job.finished_at = time()
        job.runner = None
        self.live -= 1
        if job.done is not None:
            job.done.set()
        self.tasks.finished(job.id, now)
        if self._all_done is not None and not self.live:
            self._all_done.set()

    def finish_cancelled(self, job: Job, reason: str) -> None:
        """Record a job that has not started (or has finished: then nothing) cancelled."""
        if job.status in TERMINAL_STATUSES:
            return
        job.cancel_reason = reason
        self._finish(job, TaskStatus.CANCELLED, None, None)
        self._pending_emit(job)

    def _pending_emit(self, job: Job) -> None:
        if self._task_group is not None and self.events is not None:
            self._task_group.start_soon(self._emit_end, job)

    async def _emit_end(self, job: Job) -> None:
        events = self.events
        if events is None:
            return
        name = _END_EVENTS[job.status]
        if events.has_listeners(name):
            await events.emit(name, job)

    # -- stopping ----------------------------------------------------------------------
    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the unfinished jobs, cancel what is left, and
        let the runners end."""
        if self.live:
            self._all_done = anyio.Event()
            with anyio.move_on_after(grace):
                await self._all_done.wait()
        dropped = [job for job in self.pending if job.status not in TERMINAL_STATUSES]
        for job in dropped:
            self.finish_cancelled(job, "shutdown: not started within the grace period")
        self.pending.clear()
        for job in self._unfinished():
            if job.runner is not None and job.runner.scope is not None:
                job.cancel_reason = "shutdown: still running after the grace period"
                job.runner.cancel()
            elif job.status is _PENDING:
                self.finish_cancelled(job, "shutdown: the manager stopped")
                dropped.append(job)
        for job in dropped:
            logger.warning("background task %s (%s) cancelled: %s", job.id, job.name,
                           job.cancel_reason)
        self.stopping = True
        self._taking = False
        for waiter in self._idle + self._room_waiters:
            waiter.set()
        self._idle.clear()
        self._room_waiters.clear()

    def _unfinished(self) -> list[Job]:
        return [job for job in self.tasks.values()
                if isinstance(job, Job) and job.status not in TERMINAL_STATUSES]
