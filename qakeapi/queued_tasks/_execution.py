"""One attempt of one claimed task, from decoding its arguments to its outcome."""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from ..constants import CORRUPT_ROW
from ..core._isolation import ThreadSlots, is_cancellation
from ..core._retry import decide_retry
from ..exceptions import CorruptTaskError, SerializationError, TaskNotRegistered
from ..types import TaskErrorInfo, TaskOutcome, TaskRecord, TaskStatus
from ._context import TaskContext, current_task
from ._serialization import decode, encode
from ._tracing import attempt_span, end_attempt_span

if TYPE_CHECKING:
    from ._registry import RegisteredTask
    from ._worker import Worker

__all__ = ["TaskExecution"]

logger = logging.getLogger("qakeapi.worker")


class TaskExecution:
    """Runs ``record`` once in its own cancel scope and says what happened."""

    __slots__ = ("_abandoned", "_cancel_reason", "_cancelled", "_give_back", "context", "record",
                 "scope", "worker")

    def __init__(self, worker: Worker, record: TaskRecord) -> None:
        self.worker = worker
        self.record = record
        save = functools.partial(worker.storage.save_progress, worker.id, record.id)
        self.context = TaskContext(record.id, dict(record.context), list(record.logs),
                                   on_change=worker.progress_changed, saver=save)
        self.scope: anyio.CancelScope | None = None
        self._cancelled = False
        self._cancel_reason: str | None = None
        self._give_back: str | None = None
        self._abandoned = False

    def cancel(self, reason: str | None = None) -> None:
        """Stop the task and record it cancelled (``reason`` None keeps the stored one)."""
        self._cancelled = True
        self._cancel_reason = reason
        self._stop()

    def give_back(self, reason: str) -> None:
        self._give_back = reason
        self._stop()

    def abandon(self, reason: str) -> None:
        logger.warning("task %s abandoned: %s", self.record.id, reason)
        self._abandoned = True
        self._stop()

    def _stop(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    def _outcome(self, status: TaskStatus, **fields: Any) -> TaskOutcome:
        return TaskOutcome(id=self.record.id, status=status, context=self.context.data,
                           logs=self.context.logs, **fields)

    def _failed(self, exc: BaseException, *, retry: bool, registered: RegisteredTask | None,
                timed_out: bool = False) -> TaskOutcome:
        record = self.record
        error = TaskErrorInfo.from_exception(exc, timed_out=timed_out)
        if retry:
            settings = self.worker.settings
            decision = decide_retry(
                exc,
                attempts=record.attempts,
                max_retries=record.max_retries,
                no_retry_on=registered.options.no_retry_on if registered else (),
                base_delay=settings.retry_base_delay,
                max_delay=settings.retry_max_delay,
            )
            if decision.retry:
                logger.warning("task %s (%s) attempt %d failed, retrying in %.2f s: %s",
                               record.id, record.name, record.attempts, decision.delay,
                               error.message or error.type)
                return self._outcome(TaskStatus.PENDING, error=error,
                                     run_at=time.time() + decision.delay)
        logger.error("task %s (%s) failed after %d attempt(s)", record.id, record.name,
                     record.attempts, exc_info=(type(exc), exc, exc.__traceback__))
        return self._outcome(TaskStatus.FAILED, error=error)

    async def run(self, threads: ThreadSlots) -> TaskOutcome | None:
        """The outcome to store, or None when the task was abandoned (lease lost); in the
        attempt's span when traces are on."""
        with attempt_span(self.record, self.worker.id) as span:
            outcome = await self._attempt(threads)
            end_attempt_span(span, outcome)
            return outcome

    async def _attempt(self, threads: ThreadSlots) -> TaskOutcome | None:
        record = self.record
        await self.worker.report(self.worker.hooks.on_started, record)
        try:
            registered = self.worker.registry.resolve(record.name)
        except TaskNotRegistered as exc:
            return self._failed(exc, retry=False, registered=None)
        try:
            args = decode(record.args)
            kwargs = decode(record.kwargs)
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise TypeError("args must be a list and kwargs an object")
        except Exception as exc:
            corrupt = CorruptTaskError(f"{CORRUPT_ROW}: task {record.id}: its arguments "
                                       f"can't be decoded: {exc!r}")
            return self._failed(corrupt, retry=False, registered=registered)
        timeout = record.timeout if record.timeout is not None else self.worker.settings.timeout
        token = current_task.set(self.context)
        timed_out = False
        try:
            with anyio.CancelScope() as scope:
                self.scope = scope
                if self._cancelled or self._give_back is not None:
                    scope.cancel()
                with anyio.move_on_after(timeout or None) as deadline:
                    result = await self._call(registered, args, kwargs, threads)
                timed_out = deadline.cancelled_caught
        except Exception as exc:
            return self._failed(exc, retry=True, registered=registered)
        except BaseException as exc:
            if is_cancellation(exc):
                raise
            return self._failed(exc, retry=True, registered=registered)
        finally:
            self.scope = None
            current_task.reset(token)
        if self._abandoned:
            return None
        if self._give_back is not None:
            return self._outcome(TaskStatus.PENDING, run_at=None, error=record.error)
        if self._cancelled:
            logger.warning("task %s (%s) cancelled: %s", record.id, record.name,
                           self._cancel_reason or "on request")
            return self._outcome(TaskStatus.CANCELLED, cancel_reason=self._cancel_reason)
        if timed_out:
            timeout_error = TimeoutError(f"task {record.id} timed out after {timeout} s")
            return self._failed(timeout_error, retry=True, registered=registered, timed_out=True)
        try:
            stored = encode(result, f"result of {record.name}")
        except SerializationError as exc:
            return self._failed(exc, retry=False, registered=registered)
        return self._outcome(TaskStatus.SUCCEEDED, result=stored)

    async def _call(self, registered: RegisteredTask, args: list[Any], kwargs: dict[str, Any],
                    threads: ThreadSlots) -> Any:
        if registered.is_async:
            return await registered.fn(*args, **kwargs)
        return await threads.run(functools.partial(registered.fn, *args, **kwargs))
