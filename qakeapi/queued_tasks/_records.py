"""From an ``add_task`` call to the :class:`TaskRecord` to store.

The options are checked here, after the ``before_store`` hooks ran, identically for every
backend; nothing is stored when one is refused.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..constants import TRACE_CONTEXT_KEY
from ..core._options import (
    check_count,
    check_flag,
    check_key,
    check_priority,
    check_seconds,
    check_task_kwargs,
)
from ..exceptions import MissingParentError, SerializationError
from ..types import TaskRecord
from ._before_store import HOOK_OPTIONS, BeforeStoreHook, NewTask, run_hooks
from ._ref import TaskRef
from ._registry import TaskRegistry, task_name
from ._serialization import TAG, encode, encode_call
from ._settings import QueueSettings
from ._tracing import trace_carrier

__all__ = ["RESERVED_OPTIONS", "AddOptions", "ParentSpec", "build_record"]

ParentSpec = TaskRef | str | Iterable[TaskRef | str] | None


@dataclass(slots=True)
class AddOptions:
    """The options of one ``add_task``/``enqueue`` call, as given (None = not given)."""

    parent: ParentSpec = None
    delay: float | None = None
    priority: int | None = None
    max_retries: int | None = None
    timeout: float | None = None
    unique_key: str | None = None
    task_kwargs: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    auto_remove: bool | None = None


RESERVED_OPTIONS = frozenset(field.name for field in dataclasses.fields(AddOptions))
"""Keyword names ``add_task`` keeps for itself; a task's own go through ``task_kwargs``."""


def check_context(value: object) -> dict[str, Any]:
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


def new_id() -> str:
    """Time-sortable, unique: 12 hex digits of microseconds, then 10 random hex digits."""
    return f"{int(time.time() * 1_000_000):013x}{os.urandom(5).hex()}"


def _apply_hooks(hooks: Sequence[BeforeStoreHook], name: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any], given: AddOptions,
                 context: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any],
                                                   AddOptions, dict[str, Any]]:
    view = NewTask(name, list(args), dict(kwargs),
                   {option: getattr(given, option) for option in HOOK_OPTIONS}, context)
    run_hooks(hooks, view)
    changed = dataclasses.replace(given, **{o: view.options.get(o) for o in HOOK_OPTIONS})
    return tuple(view.args), view.kwargs, changed, check_context(view.context)


def build_record(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 given: AddOptions, *, registry: TaskRegistry, settings: QueueSettings,
                 hooks: Sequence[BeforeStoreHook]) -> TaskRecord:
    """The record for ``fn(*args, **kwargs)``: hooks run, options and arguments checked."""
    defined_as = task_name(fn)
    if defined_as.startswith("__main__:") and not settings.url.startswith("memory:"):
        raise TypeError(
            f"{defined_as} is defined in the script being run (__main__): worker "
            f"processes can't import it; move it into a module and import it from there")
    registered = registry.for_function(fn)
    name = registered.name
    if given.task_kwargs is not None:
        kwargs = {**kwargs, **check_task_kwargs(given.task_kwargs)}
    context = {} if given.context is None else check_context(given.context)
    if hooks:
        args, kwargs, given, context = _apply_hooks(hooks, name, args, kwargs, given, context)
    delay = None if given.delay is None else check_seconds("delay", given.delay)
    priority = None if given.priority is None else check_priority(given.priority)
    max_retries = (None if given.max_retries is None
                   else check_count("max_retries", given.max_retries))
    timeout = None if given.timeout is None else check_seconds("timeout", given.timeout)
    unique_key = None if given.unique_key is None else check_key("unique_key", given.unique_key)
    auto_remove = (None if given.auto_remove is None
                   else check_flag("auto_remove", given.auto_remove))
    parents = parent_ids(given.parent)
    carrier = trace_carrier()
    if carrier is not None:
        context[TRACE_CONTEXT_KEY] = carrier
    options = registered.options
    enc_args, enc_kwargs = encode_call(name, args, kwargs)
    now = time.time()
    retries = max_retries if max_retries is not None else options.max_retries
    return TaskRecord(
        id=new_id(),
        name=name,
        args=enc_args,
        kwargs=enc_kwargs,
        max_retries=settings.max_retries if retries is None else retries,
        timeout=timeout if timeout is not None else options.timeout,
        priority=priority if priority is not None else (options.priority or 0),
        created_at=now,
        run_at=now + delay if delay else None,
        parents=parents,
        unique_key=unique_key,
        context=context,
        auto_remove=bool(options.auto_remove) if auto_remove is None else auto_remove,
    )


def parent_ids(parent: ParentSpec) -> tuple[str, ...]:
    """The ids ``parent=`` names, in order, once each."""
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
            if item.store_error is not None:
                raise MissingParentError(f"parent task {item.id} was never stored")
            ids.append(item.id)
        elif isinstance(item, str):
            ids.append(check_key("parent", item))
        else:
            raise TypeError(f"parent must be a TaskRef or a task id, got {item!r}")
    return tuple(dict.fromkeys(ids))
