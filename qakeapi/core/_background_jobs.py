"""What the background task manager keeps per task: the job (its record plus what running it
needs), the runner that runs it, and the facts about its function."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..types import TaskRecord, TaskStatus

__all__ = [
    "DESCRIPTIONS",
    "JOB_ARGUMENTS",
    "JOB_UNSET_DEFAULTS",
    "NO_KWARGS",
    "EmptyMapping",
    "Job",
    "Runner",
    "describe_cached",
    "is_async_callable",
    "record_initializer",
    "unset_defaults",
]

JOB_ARGUMENTS = ("id", "name", "args", "kwargs", "max_retries", "timeout", "created_at")
"""The record fields ``Job(...)`` takes (in this order); every other one gets its default."""
_JOB_SLOTS = ("fn", "is_async", "no_retry_on", "done", "runner")
_JOB_SLOT_ARGUMENTS = 3
"""``Job(...)`` takes the first three of its own slots; ``done`` and ``runner`` start None."""


class EmptyMapping(dict[str, Any]):
    """An empty ``dict`` shared by the records that have no keyword arguments or context:
    it compares, iterates and serialises as ``{}``, and refuses to be changed (a change would
    show in every record). A task runs several times faster when its record doesn't allocate
    two dicts of its own (the allocations also trigger the garbage collector more often)."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("this record's kwargs/context is a shared empty mapping: "
                        "replace it instead of changing it")

    __setitem__ = __delitem__ = _refuse
    update = setdefault = pop = popitem = clear = __ior__ = _refuse


NO_KWARGS = EmptyMapping()
"""``kwargs`` and ``context`` of a record that has none."""


def record_initializer(record: type, arguments: tuple[str, ...],
                       extra: tuple[str, ...] = (), extra_none: tuple[str, ...] = (),
                       shared: Mapping[str, object] | None = None,
                       unset: Collection[str] = ()) -> Callable[..., None]:
    """An ``__init__`` for a subclass of the dataclass ``record`` taking ``arguments`` (record
    fields) and ``extra`` (its own slots) positionally, giving the fields in ``shared`` that
    value, every other field its default, and ``extra_none`` None — made from
    :func:`dataclasses.fields` at import, so a field added to ``record`` is set too (one
    without a default raises here, naming it). Fields in ``unset`` are left unset: the
    subclass answers them (see :func:`unset_defaults`).

    It stores plainly, as a hand-written ``__init__`` does: the dataclass's own ``__init__``
    (every field by keyword) costs several times more, and runs once per task."""
    names = {field.name for field in dataclasses.fields(record)}
    unknown = set(arguments) - names
    if unknown:
        raise TypeError(f"{record.__name__} has no field(s) {', '.join(sorted(unknown))}")
    constants: dict[str, Any] = {}
    lines = []
    shared = shared or {}
    for field in dataclasses.fields(record):
        if field.name in unset:
            continue
        if field.name in arguments:
            value = field.name
        elif field.name in shared:
            value = f"_shared_{field.name}"
            constants[value] = shared[field.name]
        elif field.default is not dataclasses.MISSING:
            value = f"_default_{field.name}"
            constants[value] = field.default
        elif field.default_factory is dict:
            value = "{}"
        elif field.default_factory is not dataclasses.MISSING:
            value = f"_factory_{field.name}()"
            constants[f"_factory_{field.name}"] = field.default_factory
        else:
            raise TypeError(f"{record.__name__}.{field.name} has no default: add it to the "
                            "arguments of the subclass's initializer")
        lines.append(f"    self.{field.name} = {value}")
    lines += [f"    self.{name} = {name}" for name in extra]
    lines += [f"    self.{name} = None" for name in extra_none]
    source = f"def __init__(self, {', '.join(arguments + extra)}):\n" + "\n".join(lines)
    exec(compile(source, f"<{record.__name__} initializer>", "exec"), constants)
    init: Callable[..., None] = constants["__init__"]
    return init


_IMMUTABLE_DEFAULTS = (type(None), bool, int, float, str, TaskStatus)


def unset_defaults(record: type, keep: Collection[str]) -> dict[str, object]:
    """The fields of the dataclass ``record`` outside ``keep`` whose default is an immutable
    value (None, a number, a string, a status, an empty tuple), by name: a subclass may
    leave them unset and answer a read with the default (``__getattr__`` runs only for an
    unset slot). A per-task record then stores its dozen live fields, not all of them."""
    return {
        field.name: field.default for field in dataclasses.fields(record)
        if field.name not in keep and (
            isinstance(field.default, _IMMUTABLE_DEFAULTS) or field.default == ())
    }


_JOB_SET = (*JOB_ARGUMENTS, "status", "context")
"""The record fields a Job stores when created: its arguments, and what runners read."""
JOB_UNSET_DEFAULTS = unset_defaults(TaskRecord, _JOB_SET)
"""The record fields a Job leaves unset until written, with the default a read answers."""


class Job(TaskRecord):
    """A background task's record plus what running it needs (one object per task)."""

    __slots__ = _JOB_SLOTS
    fn: Callable[..., Any]
    is_async: bool
    no_retry_on: tuple[type[BaseException], ...]
    done: anyio.Event | None
    runner: Runner | None

    if TYPE_CHECKING:
        def __init__(self, id: str, name: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any], max_retries: int, timeout: float | None,
                     created_at: float, fn: Callable[..., Any], is_async: bool,
                     no_retry_on: tuple[type[BaseException], ...]) -> None: ...
    else:
        __init__ = record_initializer(TaskRecord, JOB_ARGUMENTS,
                                      _JOB_SLOTS[:_JOB_SLOT_ARGUMENTS],
                                      _JOB_SLOTS[_JOB_SLOT_ARGUMENTS:],
                                      shared={"context": NO_KWARGS},
                                      unset=JOB_UNSET_DEFAULTS)

        def __getattr__(self, name: str) -> Any:
            """A field left unset (its default until written); reached only for those."""
            try:
                return JOB_UNSET_DEFAULTS[name]
            except KeyError:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}") from None


class Runner:
    """One runner coroutine's cancel scope, shared by the jobs it runs one after another."""

    __slots__ = ("cancelled", "job", "scope")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.job: Job | None = None
        self.cancelled = False
        """Set with the scope's cancellation, so the hot loop reads an attribute."""

    def cancel(self) -> None:
        if self.scope is not None:
            self.cancelled = True
            self.scope.cancel()


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine: a coroutine function, an object whose
    ``__call__`` is one, or a ``functools.partial`` of either."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


def _describe(fn: Callable[..., Any]) -> tuple[str, bool]:
    """A task's name (``module:qualname``) and whether it is a coroutine function."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return (f"{module}:{name}" if module else name), is_async_callable(fn)


DESCRIPTIONS: dict[Any, tuple[str, bool]] = {}
"""``(name, is_async)`` by task function, read first on the hot path."""
DESCRIPTIONS_MAX = 4096


def describe_cached(fn: Callable[..., Any]) -> tuple[str, bool]:
    """``(name, is_async)`` of a task function (TypeError if it isn't callable)."""
    try:
        return DESCRIPTIONS[fn]
    except KeyError:
        pass
    except TypeError:  # unhashable
        if not callable(fn):
            raise TypeError(f"a background task must be callable, got {fn!r}") from None
        return _describe(fn)
    if not callable(fn):
        raise TypeError(f"a background task must be callable, got {fn!r}")
    if len(DESCRIPTIONS) >= DESCRIPTIONS_MAX:
        DESCRIPTIONS.clear()
    found = DESCRIPTIONS[fn] = _describe(fn)
    return found
