"""The worker: claims due tasks in batches, runs them, stores outcomes in batches.

Loops of one worker (all on one anyio task group):

* claim — whenever slots are free, ``storage.claim(free slots)``; when nothing is due it
  sleeps until a notification (``storage.listen``), the next due time, or a slow recheck;
* run — each claimed task runs in its own cancel scope (timeouts, cancellation);
* finish — outcomes are buffered and stored by one ``storage.finish`` call per round;
* heartbeat — renews leases, registers the worker, recovers expired leases, purges old
  records; progress — stores changed context and logs of running tasks.

Backend errors never kill the worker: it logs them and retries with capped backoff.

A worker needs no :class:`~qakeapi.queued_tasks.QueuedTasks`: it takes a connected storage,
the registry of the functions it may run, the settings and a hooks sink
(:class:`~qakeapi.queued_tasks._hooks.WorkerHooks`) told when attempts start and finish.
``tasks.worker()`` builds one on a queue's storage that reports to the queue's hooks.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ..constants import (
    HEARTBEAT_FRACTION,
    IDLE_RECHECK_SECONDS,
    PROGRESS_FLUSH_SECONDS,
    SETTING_MAX_COUNT,
)
from ..core._isolation import ThreadSlots
from ..core._options import check_count
from ..core._retry import backoff_delay
from ..types import TERMINAL_STATUSES, WorkerInfo
from ._execution import TaskExecution
from ._hooks import NO_HOOKS, WorkerHooks
from ._registry import TaskRegistry
from ._settings import QueueSettings
from .backends import QueueStorage

if TYPE_CHECKING:
    from ..types import TaskOutcome, TaskRecord

__all__ = ["Worker"]

logger = logging.getLogger("qakeapi.worker")

_BACKOFF_MAX = 2.0
_PURGE_EVERY = 300.0


def _checked(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"Worker({name}=...) takes a {kind.__name__}, got {value!r}; "
                        f"Worker(storage, registry, settings) — or tasks.worker() from a queue")


class Worker:
    """Runs the tasks of ``storage`` (connected), ``concurrency`` at a time (default
    ``settings.max_workers``), and tells ``hooks`` when attempts start and finish.

    Run it in a task group: ``await tg.start(worker.run)``; ``worker.stop()`` drains it."""

    def __init__(self, storage: QueueStorage, registry: TaskRegistry, settings: QueueSettings,
                 *, hooks: WorkerHooks = NO_HOOKS, concurrency: int | None = None,
                 worker_id: str | None = None) -> None:
        _checked("storage", storage, QueueStorage)
        _checked("registry", registry, TaskRegistry)
        _checked("settings", settings, QueueSettings)
        self.storage = storage
        self.registry = registry
        self.settings = settings
        self.hooks = hooks
        self.concurrency = settings.max_workers if concurrency is None else check_count(
            "concurrency", concurrency, minimum=1, maximum=SETTING_MAX_COUNT)
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.started_at = time.time()
        self.running: dict[str, TaskExecution] = {}
        self._outcomes: list[tuple[TaskOutcome, TaskRecord]] = []
        self._outcomes_ready = anyio.Event()
        self._wake = anyio.Event()
        self._slot_freed = anyio.Event()
        self._stopping = False
        self._stopped = anyio.Event()
        self._threads = ThreadSlots(self.concurrency, on_release=self._thread_returned)
        self._progress_wanted = anyio.Event()

    # -- control ----------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        """``stop()`` was called: the worker claims no more tasks."""
        return self._stopping

    def stop(self) -> None:
        """Stop claiming; running tasks get the grace period, then are given back."""
        self._stopping = True
        self._wake.set()
        self._slot_freed.set()

    async def stop_and_wait(self) -> None:
        """``stop()``, then wait until ``run`` has returned."""
        self.stop()
        await self._stopped.wait()

    def _thread_returned(self) -> None:
        self._slot_freed.set()

    def _on_work(self) -> None:
        self._wake.set()

    def _on_cancel(self, task_id: str) -> None:
        execution = self.running.get(task_id)
        if execution is not None:
            execution.cancel()

    # -- main -------------------------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                  ) -> None:
        storage = self.storage
        try:
            await self._retrying("register worker",
                                 lambda: storage.register_worker(self._info()), attempts=3)
            async with anyio.create_task_group() as service:
                service.start_soon(self._listen)
                service.start_soon(self._heartbeat_loop)
                service.start_soon(self._progress_loop)
                async with anyio.create_task_group() as runners:
                    runners.start_soon(self._finish_loop)
                    task_status.started()
                    await self._claim_loop(runners)
                    await self._drain()
                    await self._flush_outcomes(final=True)
                    runners.cancel_scope.cancel()
                service.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._retrying("unregister worker", lambda: storage.unregister_worker(
                    self.id), attempts=3)
            self._threads.warn_if_abandoned(f"worker {self.id}")
            self._stopped.set()

    async def _retrying(self, what: str, call: Callable[[], Awaitable[Any]],
                        attempts: int | None = None) -> Any:
        """``await call()``, retried with capped backoff on backend errors (logged)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except Exception as exc:
                if attempts is not None and attempt >= attempts:
                    logger.error("worker %s: %s failed, giving up: %r", self.id, what, exc)
                    return None
                delay = backoff_delay(attempt, 0.05, _BACKOFF_MAX)
                logger.warning("worker %s: %s failed (%r); retrying in %.2f s", self.id, what,
                               exc, delay)
                await anyio.sleep(delay)

    async def _listen(self) -> None:
        storage = self.storage
        while True:
            try:
                await storage.listen(self._on_work, self._on_cancel)
                return
            except Exception as exc:
                logger.warning("worker %s: notifications stopped (%r); restarting", self.id, exc)
                self._wake.set()
                await anyio.sleep(1.0)

    async def _claim_loop(self, runners: anyio.abc.TaskGroup) -> None:
        storage = self.storage
        lease = self.settings.lease_seconds
        failures = 0
        while not self._stopping:
            free = self.concurrency - len(self.running) - self._threads.abandoned
            if free <= 0:
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
                continue
            self._wake = anyio.Event()
            try:
                claimed = await storage.claim(self.id, free, lease)
                failures = 0
            except Exception as exc:
                failures += 1
                delay = backoff_delay(failures, 0.05, _BACKOFF_MAX)
                logger.warning("worker %s: claiming failed (%r); retrying in %.2f s", self.id,
                               exc, delay)
                await anyio.sleep(delay)
                continue
            for record in claimed:
                execution = TaskExecution(self, record)
                self.running[record.id] = execution
                runners.start_soon(self._run, execution)
            if not claimed:
                await self._idle_wait()

    async def _idle_wait(self) -> None:
        storage = self.storage
        timeout = IDLE_RECHECK_SECONDS
        try:
            due = await storage.next_due_at()
        except Exception as exc:
            logger.warning("worker %s: reading the next due time failed: %r", self.id, exc)
            due = None
        if due is not None:
            timeout = min(timeout, max(0.0, due - time.time()))
        if timeout > 0:
            with anyio.move_on_after(timeout):
                await self._wake.wait()

    async def _run(self, execution: TaskExecution) -> None:
        try:
            outcome = await execution.run(self._threads)
        finally:
            self.running.pop(execution.record.id, None)
            self._slot_freed.set()
        if outcome is not None:
            self._outcomes.append((outcome, execution.record))
            self._outcomes_ready.set()

    async def _drain(self) -> None:
        if not self.running:
            return
        with anyio.move_on_after(self.settings.shutdown_grace):
            while self.running:
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
        for execution in list(self.running.values()):
            execution.give_back("the worker stopped")
        while self.running:
            self._slot_freed = anyio.Event()
            await self._slot_freed.wait()

    # -- outcomes ---------------------------------------------------------------------
    async def _finish_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready = anyio.Event()
            await self._flush_outcomes()

    async def _flush_outcomes(self, final: bool = False) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        storage = self.storage
        accepted = await self._retrying(
            f"storing {len(batch)} outcome(s)",
            lambda: storage.finish(self.id, [outcome for outcome, _ in batch]),
            attempts=5 if final else None,
        )
        if accepted is None:
            return
        accepted_ids = set(accepted)
        for outcome, record in batch:
            if outcome.id not in accepted_ids:
                logger.warning("worker %s: outcome of task %s was not accepted (lease lost)",
                               self.id, outcome.id)
                continue
            record.status = outcome.status
            record.result = outcome.result
            record.error = outcome.error
            if outcome.context is not None:
                record.context = outcome.context
            if outcome.logs is not None:
                record.logs = outcome.logs
            if outcome.status.is_terminal:
                record.finished_at = time.time()
            await self.report(self.hooks.on_finished, record)

    # -- heartbeat and progress -------------------------------------------------------
    def _info(self) -> WorkerInfo:
        return WorkerInfo(id=self.id, hostname=socket.gethostname(), pid=os.getpid(),
                          concurrency=self.concurrency, started_at=self.started_at,
                          last_heartbeat=time.time(), running=len(self.running))

    async def _heartbeat_loop(self) -> None:
        storage = self.storage
        interval = self.settings.lease_seconds / HEARTBEAT_FRACTION
        last_purge = 0.0
        while True:
            try:
                await storage.register_worker(self._info())
                if self.running:
                    result = await storage.renew(self.id, list(self.running),
                                                 self.settings.lease_seconds)
                    for task_id in result.lost:
                        execution = self.running.get(task_id)
                        if execution is not None:
                            execution.abandon("lease lost: another worker may run it")
                    for task_id in result.cancel_requested:
                        self._on_cancel(task_id)
                if await storage.reclaim_expired():
                    self._wake.set()
                if time.time() - last_purge > _PURGE_EVERY:
                    last_purge = time.time()
                    await storage.purge(
                        TERMINAL_STATUSES,
                        finished_before=time.time() - self.settings.retention_seconds)
            except Exception as exc:
                logger.warning("worker %s: heartbeat failed: %r", self.id, exc)
            await anyio.sleep(interval)

    async def report(self, hook: Callable[[TaskRecord], Awaitable[None]],
                     record: TaskRecord) -> None:
        """``await hook(record)`` (one of ``self.hooks``); what it raises is logged only."""
        try:
            await hook(record)
        except Exception:
            logger.exception("worker %s: hook %r for task %s failed", self.id, hook, record.id)

    def progress_changed(self) -> None:
        self._progress_wanted.set()

    async def _progress_loop(self) -> None:
        while True:
            await self._progress_wanted.wait()
            await anyio.sleep(PROGRESS_FLUSH_SECONDS)
            self._progress_wanted = anyio.Event()
            for execution in list(self.running.values()):
                try:
                    await execution.context.save()
                except Exception as exc:
                    logger.warning("worker %s: saving progress of %s failed: %r", self.id,
                                   execution.record.id, exc)
