"""``QueuedTasks``: add durable tasks, inspect and control them.

The queue holds the shared logic (checking arguments, building records, batching, events);
the storage chosen by ``QUEUE_URL`` only stores. Tasks added while a request is handled are
stored in one batch before its response starts; tasks added elsewhere are stored at once by
a background flusher (``await tasks.flush()`` waits for it, ``await tasks.enqueue(...)``
stores before returning).
"""

from __future__ import annotations

import builtins
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc

from ..core.errors import single_exception
from ..core.options import (
    check_count,
    check_flag,
    check_key,
    check_priority,
    check_seconds,
    check_task_kwargs,
)
from ..core.request_tasks import current_request_tasks
from ..exceptions import MissingParentError, QueueError, SerializationError
from ..types import QueueStats, TaskRecord, TaskStatus, WorkerInfo
from ._before_store import HOOK_OPTIONS, BeforeStoreHook, NewTask, check_hook, run_hooks
from .backends import QueueStorage, open_storage
from .batch import Batch, RequestBatch
from .ref import TaskRef
from .registry import TaskOptions, TaskRegistry, task_name
from .serialization import TAG, encode, encode_call
from .settings import QueueSettings

if TYPE_CHECKING:
    from ..app import QakeAPI
    from .worker import Worker

__all__ = ["RESERVED_OPTIONS", "QueuedTasks"]

logger = logging.getLogger("qakeapi.queue")
F = TypeVar("F", bound=Callable[..., Any])

RESERVED_OPTIONS = frozenset(
    {"parent", "delay", "priority", "max_retries", "timeout", "unique_key", "task_kwargs",
     "context", "auto_remove"}
)
"""Keyword names ``add_task`` keeps for itself; a task's own go through ``task_kwargs``."""

ParentSpec = TaskRef | str | Iterable[TaskRef | str] | None


def _exception_classes(value: Iterable[type[BaseException]]) -> tuple[type[BaseException], ...]:
    given: Any = value
    classes = tuple(given) if isinstance(given, Iterable) else (given,)
    for item in classes:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"no_retry_on must hold exception classes, got {item!r}")
    return classes


def _check_context(value: object) -> dict[str, Any]:
    """``context=``: a mapping of names to JSON data, as ``get_context`` reads it back."""
    if not isinstance(value, Mapping):
        raise TypeError(f"context must be a mapping of names to JSON data, got {value!r}")
    encoded: dict[str, Any] = encode(dict(value), "context")
    _refuse_tagged(encoded, "context")
    return encoded


def _refuse_tagged(value: Any, path: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_tagged(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        if TAG in value:
            raise SerializationError(
                f"{path}: a {value[TAG]} can't be stored in context; context takes JSON data "
                f"(dict, list, str, int, float, bool, None) — pass it as text")
        for key, item in value.items():
            if not key or "." in key:
                raise ValueError(f"{path}: key {key!r} must be a non-empty name without dots "
                                 f"(nest dicts instead: get_context('a.b') reads a['b'])")
            _refuse_tagged(item, f"{path}[{key!r}]")


def _new_id() -> str:
    """Time-sortable, unique: 12 hex digits of microseconds, then 10 random hex digits."""
    return f"{int(time.time() * 1_000_000):013x}{os.urandom(5).hex()}"


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
        self.app: QakeAPI | None = None
        self._storage: QueueStorage | None = None
        self._pending = Batch()
        self._flush_wanted: anyio.Event | None = None
        self._unsettled: list[Batch] = []
        self._done_waiters: dict[str, anyio.Event] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self.worker: Worker | None = None
        self._stack: AsyncExitStack | None = None
        self._before_store: list[BeforeStoreHook] = []

    def configure(self, *, url: str | None = None, embedded_worker: bool | None = None,
                  strict: bool | None = None) -> None:
        """Override the URL, the embedded worker and/or strict mode before the queue starts
        (the CLI does this for ``--url`` and worker processes)."""
        if self.started:
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
            _exception_classes(no_retry_on),
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
        if self._storage is None:
            raise QueueError(
                "the queue is not started: add tasks while the app runs, or inside "
                "`async with QueuedTasks(url) as tasks:`"
            )
        return self._storage

    @property
    def started(self) -> bool:
        return self._storage is not None

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
        record = self._build(fn, args, kwargs, parent, delay, priority, max_retries, timeout,
                             unique_key, task_kwargs, context, auto_remove)
        holder = current_request_tasks.get()
        if holder is not None and holder.holds_queued:
            batch: Batch = holder.participant(self, lambda: RequestBatch(self))
        else:
            self.storage  # noqa: B018 - fail now, with a clear message, if not started
            batch = self._pending
            if self._flush_wanted is not None:
                self._flush_wanted.set()
        ref = TaskRef(self, record.id, batch)
        batch.records.append(record)
        batch.refs.append(ref)
        return ref

    async def enqueue(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> TaskRef:
        """Like ``add_task`` (same options), but stored when it returns."""
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in RESERVED_OPTIONS}
        record = self._build(fn, args, kwargs, options.get("parent"), options.get("delay"),
                             options.get("priority"), options.get("max_retries"),
                             options.get("timeout"), options.get("unique_key"),
                             options.get("task_kwargs"), options.get("context"),
                             options.get("auto_remove"))
        batch = Batch()
        ref = TaskRef(self, record.id, batch)
        batch.records.append(record)
        batch.refs.append(ref)
        await self._store(batch)
        await batch.wait_stored()
        return ref

    def _build(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
               parent: ParentSpec, delay: float | None, priority: int | None,
               max_retries: int | None, timeout: float | None, unique_key: str | None,
               task_kwargs: Mapping[str, Any] | None,
               context: Mapping[str, Any] | None,
               auto_remove: bool | None) -> TaskRecord:
        defined_as = task_name(fn)
        if defined_as.startswith("__main__:") and not self.settings.url.startswith("memory:"):
            raise TypeError(
                f"{defined_as} is defined in the script being run (__main__): worker "
                f"processes can't import it; move it into a module and import it from there")
        registered = self.registry.for_function(fn)
        name = registered.name
        if task_kwargs is not None:
            kwargs = {**kwargs, **check_task_kwargs(task_kwargs)}
        initial_context = {} if context is None else _check_context(context)
        if self._before_store:
            view = NewTask(name, list(args), dict(kwargs), dict(zip(HOOK_OPTIONS, (
                parent, delay, priority, max_retries, timeout, unique_key, auto_remove),
                strict=True)), initial_context)
            run_hooks(self._before_store, view)
            args, kwargs = tuple(view.args), view.kwargs
            initial_context = _check_context(view.context)
            parent, delay, priority, max_retries, timeout, unique_key, auto_remove = (
                view.options.get(option) for option in HOOK_OPTIONS)
        if delay is not None:
            delay = check_seconds("delay", delay)
        if priority is not None:
            priority = check_priority(priority)
        if max_retries is not None:
            max_retries = check_count("max_retries", max_retries)
        if timeout is not None:
            timeout = check_seconds("timeout", timeout)
        if unique_key is not None:
            unique_key = check_key("unique_key", unique_key)
        if auto_remove is not None:
            auto_remove = check_flag("auto_remove", auto_remove)
        parents = self._parent_ids(parent)
        options = registered.options
        enc_args, enc_kwargs = encode_call(name, args, kwargs)
        now = time.time()
        retries = max_retries if max_retries is not None else options.max_retries
        task_timeout = timeout if timeout is not None else options.timeout
        return TaskRecord(
            id=_new_id(),
            name=name,
            args=enc_args,
            kwargs=enc_kwargs,
            max_retries=self.settings.max_retries if retries is None else retries,
            timeout=task_timeout,
            priority=priority if priority is not None else (options.priority or 0),
            created_at=now,
            run_at=now + delay if delay else None,
            parents=parents,
            unique_key=unique_key,
            context=initial_context,
            auto_remove=bool(options.auto_remove) if auto_remove is None else auto_remove,
        )

    def _parent_ids(self, parent: ParentSpec) -> tuple[str, ...]:
        if parent is None:
            return ()
        items: Iterable[TaskRef | str]
        if isinstance(parent, (TaskRef, str)):
            items = [parent]
        elif isinstance(parent, Iterable) and not isinstance(parent, (bytes, Mapping)):
            items = parent
        else:
            raise TypeError(f"parent must be a TaskRef, a task id or a list of them, "
                            f"got {parent!r}")
        ids: list[str] = []
        for item in items:
            if isinstance(item, TaskRef):
                if item._batch is not None and item._batch.error is not None:
                    raise MissingParentError(f"parent task {item.id} was never stored")
                ids.append(item.id)
            elif isinstance(item, str):
                ids.append(check_key("parent", item))
            else:
                raise TypeError(f"parent must be a TaskRef or a task id, got {item!r}")
        return tuple(dict.fromkeys(ids))

    async def _store(self, batch: Batch) -> None:
        """Store ``batch`` in one call; settles it (with the error, which is re-raised)."""
        try:
            stored = await self.storage.enqueue(batch.records)
        except BaseException as exc:
            batch.settle(None, exc)
            raise
        batch.settle(stored, None)
        for record in stored:
            await self._emit("task:created", record)

    async def flush(self) -> None:
        """Wait until every task added so far outside a request is stored (or raise)."""
        if self._pending.records:
            batch, self._pending = self._pending, Batch()
            await self._store(batch)
        for batch in list(self._unsettled):
            await batch.wait_stored()

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
    def _resolve_settings(self) -> QueueSettings:
        if self._given_settings is not None:
            settings = self._given_settings
        else:
            settings = QueueSettings.from_env(url=self._url)
        if self._embedded_override is not None:
            settings = settings.replace(embedded_worker=self._embedded_override)
        if self._strict_override is not None:
            settings = settings.replace(strict=self._strict_override)
        return settings

    @asynccontextmanager
    async def lifespan(self, app: QakeAPI | None = None,
                       *, worker: bool | None = None) -> AsyncIterator[QueuedTasks]:
        """Connect, run the flusher and (unless turned off) an embedded worker; on exit
        store what is pending, drain the worker for its grace period, and close."""
        from .worker import Worker

        self.settings = self._resolve_settings()
        self.app = app
        self.registry.strict = self.settings.strict
        if app is not None:
            self.registry.allow_package(app.import_name)
        storage = open_storage(self.settings.url)
        await storage.connect()
        self._storage = storage
        run_worker = self.settings.embedded_worker if worker is None else worker
        try:
            with single_exception():
                async with anyio.create_task_group() as tg:
                    self._task_group = tg
                    tg.start_soon(self._flusher)
                    if run_worker:
                        self.worker = Worker(self)
                        await tg.start(self.worker.run)
                    try:
                        yield self
                    finally:
                        with anyio.CancelScope(shield=True):
                            try:
                                await self.flush()
                            except Exception:
                                logger.exception("storing queued tasks at shutdown failed")
                            if self.worker is not None:
                                await self.worker.stop_and_wait()
                        tg.cancel_scope.cancel()
        finally:
            self._task_group = None
            self.worker = None
            self._storage = None
            with anyio.CancelScope(shield=True):
                await storage.close()

    async def __aenter__(self) -> QueuedTasks:
        self._stack = AsyncExitStack()
        return await self._stack.enter_async_context(self.lifespan())

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._stack is not None
        await self._stack.__aexit__(exc_type, exc, tb)

    # -- events and waiting -----------------------------------------------------------
    async def _emit(self, name: str, record: TaskRecord) -> None:
        app = self.app
        if app is not None and app.events.has_listeners(name):
            await app.events.emit(name, record)

    def _task_finished(self, task_id: str) -> None:
        event = self._done_waiters.pop(task_id, None)
        if event is not None:
            event.set()

    async def _wait_done(self, task_id: str, timeout: float) -> None:
        event = self._done_waiters.get(task_id)
        if event is None:
            event = self._done_waiters[task_id] = anyio.Event()
        with anyio.move_on_after(timeout):
            await event.wait()

    # -- inspecting and controlling ---------------------------------------------------
    async def get(self, task_id: str) -> TaskRecord | None:
        return await self.storage.get(task_id)

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> list[TaskRecord]:
        return await self.storage.list(status, limit=limit, offset=offset)

    async def stats(self) -> QueueStats:
        return await self.storage.stats()

    async def cancel(self, task_id: str, reason: str = "cancelled") -> TaskRecord:
        record = await self.storage.cancel(task_id, reason)
        if record.status is TaskStatus.CANCELLED:
            self._task_finished(task_id)
            await self._emit("task:cancelled", record)
        return record

    async def requeue(self, task_id: str) -> TaskRecord:
        return await self.storage.requeue(task_id)

    async def purge(self, statuses: Collection[TaskStatus] | None = None, *,
                    older_than: float | None = None) -> int:
        chosen = statuses or (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
        before = time.time() - older_than if older_than is not None else None
        return await self.storage.purge(chosen, finished_before=before)

    async def workers(self) -> builtins.list[WorkerInfo]:
        return await self.storage.list_workers()
