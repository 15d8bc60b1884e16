"""``QueuedTasks``: the producer side of the queue — add durable tasks, inspect and control
them — and its lifecycle.

The queue checks arguments, builds records (``_records``), batches them and stores them;
the storage chosen by ``QUEUE_URL`` only stores, and a :class:`~._worker.Worker` runs them.
Tasks added while a request is handled are stored in one batch before its response starts;
tasks added elsewhere are stored at once by a background flusher (``await tasks.flush()``
waits for it, ``await tasks.enqueue(...)`` stores before returning).

Inside an app's lifespan the queue costs nothing until it is needed: it opens its storage
and starts its embedded worker at startup only when the app declares tasks (a registered
task, or a SQLite queue that already exists), else on first use (see ``lifespan``).
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Hashable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.from_thread

from ..core._errors import single_exception
from ..core._options import (
    check_count,
    check_exception_classes,
    check_flag,
    check_key,
    check_priority,
    check_seconds,
)
from ..core._request_tasks import current_request_tasks
from ..exceptions import QueueError
from ..types import TERMINAL_STATUSES, QueueStats, TaskPage, TaskRecord, TaskStatus, WorkerInfo
from ._batch import Batch, RequestBatch
from ._before_store import BeforeStoreHook, check_hook
from ._hooks import QueueHooks
from ._records import RESERVED_OPTIONS, AddOptions, ParentSpec, build_record
from ._ref import TaskRef
from ._registry import TaskOptions, TaskRegistry
from ._settings import QueueSettings
from ._worker import Worker
from .backends import QueueStorage, open_storage

if TYPE_CHECKING:
    from ..app import QakeAPI

__all__ = ["RESERVED_OPTIONS", "QueuedTasks"]

logger = logging.getLogger("qakeapi.queue")
F = TypeVar("F", bound=Callable[..., Any])

_NOT_STARTED = (
    "the queue is not started: add tasks while the app runs (its lifespan starts the queue), "
    "or inside `async with QueuedTasks(url) as tasks:`"
)


def _existing_sqlite_queue(url: str) -> bool:
    """A SQLite queue whose file exists may hold tasks of an earlier run or another process."""
    if urlsplit(url).scheme.lower() != "sqlite":
        return False
    from .backends._sqlite import path_from_url

    return os.path.exists(path_from_url(url))


class QueuedTasks:
    """The app's task queue: ``tasks.add_task(fn, *args, parent=..., **kwargs)``."""

    def __init__(self, url: str | None = None, *, settings: QueueSettings | None = None,
                 embedded_worker: bool | None = None, strict: bool | None = None) -> None:
        self._url = url
        self._given_settings = settings
        self._embedded_override = embedded_worker
        self._strict_override = strict
        self.settings: QueueSettings = settings or QueueSettings(url=url or "memory://")
        self.registry = TaskRegistry(strict=self.settings.strict if strict is None else strict)
        self.hooks = QueueHooks()
        """Where workers report: ``task:*`` events and the waiters of ``TaskRef.wait``."""
        self.app: QakeAPI | None = None
        self._storage: QueueStorage | None = None
        self._pending = Batch()
        self._flush_wanted: anyio.Event | None = None
        self._flusher_started = False
        self._unsettled: list[Batch] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        self._loop_thread = threading.get_ident()
        self._opening: anyio.Lock | None = None
        self._run_worker = False
        self._embedded: Worker | None = None
        self._stack: AsyncExitStack | None = None
        self._before_store: list[BeforeStoreHook] = []

    def configure(self, *, url: str | None = None, embedded_worker: bool | None = None,
                  strict: bool | None = None) -> None:
        """Override the URL, the embedded worker and/or strict mode before the queue starts
        (the CLI does this for ``--url`` and worker processes)."""
        if self.running:
            raise QueueError("configure the queue before it starts")
        if url is not None:
            self._url = url
            self._given_settings = None
        if embedded_worker is not None:
            self._embedded_override = embedded_worker
        if strict is not None:
            self._strict_override = strict

    # -- registration -----------------------------------------------------------------
    def task(self, fn: F | None = None, *, name: str | None = None,
             max_retries: int | None = None, timeout: float | None = None,
             priority: int | None = None,
             no_retry_on: Iterable[type[BaseException]] = (),
             auto_remove: bool | None = None) -> Any:
        """Register a task function with defaults: ``@tasks.task(no_retry_on=(AuthError,))``."""

        def decorator(func: F) -> F:
            self.register(func, name=name, max_retries=max_retries, timeout=timeout,
                          priority=priority, no_retry_on=no_retry_on, auto_remove=auto_remove)
            return func

        return decorator(fn) if fn is not None else decorator

    def register(self, fn: Callable[..., Any], *, name: str | None = None,
                 max_retries: int | None = None, timeout: float | None = None,
                 priority: int | None = None,
                 no_retry_on: Iterable[type[BaseException]] = (),
                 auto_remove: bool | None = None) -> None:
        options = TaskOptions(
            None if max_retries is None else check_count("max_retries", max_retries),
            None if timeout is None else check_seconds("timeout", timeout),
            None if priority is None else check_priority(priority),
            check_exception_classes("no_retry_on", no_retry_on),
            None if auto_remove is None else check_flag("auto_remove", auto_remove),
        )
        self.registry.register(fn, name=None if name is None else check_key("name", name),
                               options=options)

    def before_store(self, hook: BeforeStoreHook) -> BeforeStoreHook:
        """Register ``hook(task: NewTask)``, run by ``add_task``/``enqueue`` before the task
        is checked and stored; it may change the task's arguments, options and context."""
        self._before_store.append(check_hook(hook))
        return hook

    # -- storage ----------------------------------------------------------------------
    @property
    def storage(self) -> QueueStorage:
        """The connected storage; QueueError until the queue is started."""
        if self._storage is None:
            raise QueueError(_NOT_STARTED if self._task_group is None else
                             "the queue is not started yet: it starts on first use "
                             "(`await tasks.start()` starts it now)")
        return self._storage

    @property
    def started(self) -> bool:
        """The storage is open (and the embedded worker, if any, runs)."""
        return self._storage is not None

    @property
    def running(self) -> bool:
        """The queue's lifespan is running (the queue may not be started yet)."""
        return self._task_group is not None

    @property
    def embedded_worker(self) -> Worker | None:
        """The worker the queue started in this process, if it is started and runs one."""
        return self._embedded

    def worker(self, *, concurrency: int | None = None,
               worker_id: str | None = None) -> Worker:
        """A new :class:`Worker` on this queue's storage, registry and settings, reporting to
        its hooks (``task:*`` events, ``TaskRef.wait``); the queue must be started. Run it
        with ``await tg.start(worker.run)`` and stop it with ``worker.stop()``."""
        return Worker(self.storage, self.registry, self.settings, hooks=self.hooks,
                      concurrency=concurrency, worker_id=worker_id)

    # -- adding -----------------------------------------------------------------------
    def add_task(
        self,
        fn: Callable[..., Any],
        *args: Any,
        parent: ParentSpec = None,
        delay: float | None = None,
        priority: int | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        unique_key: str | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        auto_remove: bool | None = None,
        **kwargs: Any,
    ) -> TaskRef:
        """Queue ``fn(*args, **kwargs)``; returns a :class:`TaskRef` at once (not awaited).

        Inside a request the task is stored before the response starts; elsewhere at once,
        in the background. Options: ``parent`` (TaskRef, id, or a list: run after they all
        succeeded), ``delay`` seconds, ``priority`` (higher first), ``max_retries``,
        ``timeout`` seconds, ``unique_key`` (no second pending/running task with this key),
        ``context`` (initial values for ``get_context``), ``auto_remove`` (delete the record
        when the task succeeds). A task's own argument named like an option goes in
        ``task_kwargs``."""
        record = self._build(fn, args, kwargs, AddOptions(
            parent, delay, priority, max_retries, timeout, unique_key, task_kwargs, context,
            auto_remove))
        holder = current_request_tasks.get()
        if holder is None or not holder.holds_queued:
            return self._add_outside_request(record)
        batch = holder.participant(self, lambda: RequestBatch(self, self._store))
        ref = TaskRef(self, record.id, batch)
        batch.records.append(record)
        batch.refs.append(ref)
        return ref

    async def enqueue(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> TaskRef:
        """Like ``add_task`` (same options), but stored when it returns."""
        options = AddOptions(**{k: kwargs.pop(k) for k in list(kwargs) if k in RESERVED_OPTIONS})
        record = self._build(fn, args, kwargs, options)
        batch = Batch()
        ref = TaskRef(self, record.id, batch)
        batch.records.append(record)
        batch.refs.append(ref)
        await self._store(batch)
        await batch.wait_stored()
        return ref

    def _build(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
               options: AddOptions) -> TaskRecord:
        return build_record(fn, args, kwargs, options, registry=self.registry,
                            settings=self.settings, hooks=self._before_store)

    async def _store(self, batch: Batch) -> None:
        """Store ``batch`` in one call (starting the queue if needed); settles it (with the
        error, which is re-raised)."""
        try:
            await self.start()
            stored = await self.storage.enqueue(batch.records)
        except BaseException as exc:
            batch.settle(None, exc)
            raise
        batch.settle(stored, None)
        for record in stored:
            await self.hooks.emit("task:created", record)

    async def flush(self) -> None:
        """Wait until every task added so far outside a request is stored (or raise)."""
        if self._pending.records:
            batch, self._pending = self._pending, Batch()
            await self._store(batch)
        for batch in list(self._unsettled):
            await batch.wait_stored()

    def _add_outside_request(self, record: TaskRecord) -> TaskRef:
        """Hand ``record`` to the flusher, on the event loop's thread (a sync task runs in a
        worker thread), starting the flusher the first time."""
        if self._task_group is None:
            raise QueueError(_NOT_STARTED)
        if threading.get_ident() != self._loop_thread:
            return anyio.from_thread.run_sync(self._add_outside_request, record)
        batch = self._pending
        ref = TaskRef(self, record.id, batch)
        batch.records.append(record)
        batch.refs.append(ref)
        if self._flush_wanted is not None:
            self._flush_wanted.set()
        elif not self._flusher_started:
            self._flusher_started = True
            self._task_group.start_soon(self._flusher)
        return ref

    async def _flusher(self) -> None:
        while True:
            wanted = self._flush_wanted = anyio.Event()
            if not self._pending.records:
                await wanted.wait()
            batch, self._pending = self._pending, Batch()
            if not batch.records:
                continue
            self._unsettled.append(batch)
            try:
                await self._store(batch)
            except Exception:
                logger.exception("storing %d queued task(s) failed", len(batch.records))
            finally:
                self._unsettled.remove(batch)

    # -- lifecycle --------------------------------------------------------------------
    def resolve_settings(self) -> QueueSettings:
        """The settings the queue starts with: the given ones, else ``QUEUE_*`` variables,
        with ``configure`` overrides applied."""
        if self._given_settings is not None:
            settings = self._given_settings
        else:
            settings = QueueSettings.from_env(url=self._url)
        if self._embedded_override is not None:
            settings = settings.replace(embedded_worker=self._embedded_override)
        if self._strict_override is not None:
            settings = settings.replace(strict=self._strict_override)
        return settings

    def _declared(self) -> bool:
        """Start at startup: the app registered tasks, or its SQLite queue exists."""
        return self.registry.has_registrations or _existing_sqlite_queue(self.settings.url)

    @asynccontextmanager
    async def lifespan(self, app: QakeAPI | None = None, *, worker: bool | None = None,
                       start: bool | None = None) -> AsyncIterator[QueuedTasks]:
        """Run the queue for an app's lifespan; on exit store what is pending, drain the
        embedded worker for its grace period, and close.

        The queue is started — storage opened, embedded worker (unless turned off) running —
        at once when ``start`` is true; when it is None (an app's lifespan), at once only if
        the app declares tasks: a task is registered (``@tasks.task``, ``tasks.register``)
        or the queue is a SQLite file that exists. Otherwise the first use starts it: the
        first ``add_task``/``enqueue`` (in a request, when its tasks are stored, before the
        response), ``flush`` or read, or ``await tasks.start()``."""
        self.settings = self.resolve_settings()
        open_storage(self.settings.url)  # a bad QUEUE_URL fails at startup, not at first use
        self.app = app
        self.hooks.bus = None if app is None else app.events
        self.registry.strict = self.settings.strict
        if app is not None:
            self.registry.allow_package(app.import_name)
        self._run_worker = self.settings.embedded_worker if worker is None else worker
        try:
            with single_exception():
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    self._loop_thread = threading.get_ident()
                    self._opening = anyio.Lock()
                    if start or (start is None and self._declared()):
                        await self.start()
                    try:
                        yield self
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self._shut_down()
                        tg.cancel_scope.cancel()
        finally:
            storage = self._storage
            self._task_group = None
            self._opening = None
            self._embedded = None
            self._storage = None
            self._flush_wanted = None
            self._flusher_started = False
            if storage is not None:
                with anyio.CancelScope(shield=True):
                    await storage.close()

    async def start(self) -> None:
        """Open the storage and start the embedded worker now, if not yet (the lifespan or
        the first use does this otherwise). QueueError outside the queue's lifespan."""
        if self._storage is not None:
            return
        if self._task_group is None or self._opening is None:
            raise QueueError(_NOT_STARTED)
        task_group = self._task_group
        with anyio.CancelScope(shield=True):
            async with self._opening:
                if self._storage is not None:
                    return
                storage = open_storage(self.settings.url)
                await storage.connect()
                self._storage = storage
                if self._run_worker:
                    embedded = self.worker()
                    await task_group.start(embedded.run)
                    self._embedded = embedded

    async def _shut_down(self) -> None:
        try:
            await self.flush()
        except Exception:
            logger.exception("storing queued tasks at shutdown failed")
        if self._embedded is not None:
            await self._embedded.stop_and_wait()

    async def __aenter__(self) -> QueuedTasks:
        self._stack = AsyncExitStack()
        return await self._stack.enter_async_context(self.lifespan(start=True))

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._stack is not None
        await self._stack.__aexit__(exc_type, exc, tb)

    # -- inspecting and controlling (each starts the queue if needed) ------------------
    async def _started_storage(self) -> QueueStorage:
        await self.start()
        return self.storage

    async def get(self, task_id: str) -> TaskRecord | None:
        return await (await self._started_storage()).get(task_id)

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> builtins.list[TaskRecord]:
        return await (await self._started_storage()).list(status, limit=limit, offset=offset)

    async def page(self, *, status: TaskStatus | None = None, name: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> TaskPage:
        """A page of tasks, newest first, optionally of one state and/or name; pass its
        ``older``/``newer`` cursor back for the next page. Fast at any depth."""
        return await (await self._started_storage()).page(status=status, name=name,
                                                           limit=limit, cursor=cursor)

    async def children(self, task_id: str, *, limit: int = 100) -> builtins.list[TaskRecord]:
        """Up to ``limit`` tasks that run after ``task_id`` (list it among their parents)."""
        return await (await self._started_storage()).children(task_id, limit=limit)

    async def stats(self) -> QueueStats:
        return await (await self._started_storage()).stats()

    async def cancel(self, task_id: str, reason: str = "cancelled") -> TaskRecord:
        record = await (await self._started_storage()).cancel(task_id, reason)
        if record.status is TaskStatus.CANCELLED:
            await self.hooks.on_finished(record)
        return record

    async def requeue(self, task_id: str) -> TaskRecord:
        return await (await self._started_storage()).requeue(task_id)

    async def purge(self, statuses: Collection[TaskStatus] | None = None, *,
                    older_than: float | None = None) -> int:
        before = time.time() - older_than if older_than is not None else None
        return await (await self._started_storage()).purge(
            statuses or TERMINAL_STATUSES, finished_before=before)

    async def workers(self) -> builtins.list[WorkerInfo]:
        return await (await self._started_storage()).list_workers()

    async def change_marker(self) -> Hashable | None:
        """A value that differs after any change to the stored tasks or workers, read
        without reading them (SQLite); None when the backend can't tell cheaply. Equal
        markers mean there is nothing new to read."""
        return await (await self._started_storage()).change_marker()
