"""Which functions a worker may run.

Task names are ``module:qualname``. A worker runs a name only if this process registered it
(``@tasks.task``, ``tasks.register(fn)``, or any function passed to ``add_task`` here) or if
its module belongs to the application's own package. A stored row can therefore never make
a worker import or call arbitrary code.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..exceptions import TaskNotRegistered

__all__ = ["RegisteredTask", "TaskOptions", "TaskRegistry", "task_name"]


@dataclass(slots=True, frozen=True)
class TaskOptions:
    """Per-function defaults; ``None`` means "use the queue's setting"."""

    max_retries: int | None = None
    timeout: float | None = None
    priority: int | None = None
    no_retry_on: tuple[type[BaseException], ...] = ()


@dataclass(slots=True, frozen=True)
class RegisteredTask:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    options: TaskOptions


def task_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a module-level function; TypeError for anything else."""
    if isinstance(fn, functools.partial) or inspect.ismethod(fn):
        raise TypeError(
            f"{fn!r} can't be a queued task: pass a module-level function (no partials or "
            f"bound methods; put the bound values in the arguments)"
        )
    if not callable(fn):
        raise TypeError(f"a queued task must be a function, got {fn!r}")
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname:
        raise TypeError(f"{fn!r} can't be a queued task: it has no module-level name")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TypeError(
            f"{module}.{qualname} can't be a queued task: lambdas and functions defined inside "
            f"other functions can't be found by a worker; define it at module level"
        )
    return f"{module}:{qualname}"


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


class TaskRegistry:
    """Registered functions, and the packages whose functions may run by name."""

    def __init__(self, packages: Iterable[str] = ()) -> None:
        self._tasks: dict[str, RegisteredTask] = {}
        self._by_fn: dict[Any, RegisteredTask] = {}
        self.packages: set[str] = set(packages)

    def allow_package(self, module_name: str) -> None:
        """Allow functions of ``module_name``'s top-level package (the app's own code)."""
        if module_name and module_name != "__main__":
            self.packages.add(module_name.split(".")[0])

    def register(
        self, fn: Callable[..., Any], *, name: str | None = None,
        options: TaskOptions | None = None,
    ) -> RegisteredTask:
        task = RegisteredTask(name or task_name(fn), fn, _is_async(fn), options or TaskOptions())
        self._tasks[task.name] = task
        self._by_fn[fn] = task
        return task

    def for_function(self, fn: Callable[..., Any]) -> RegisteredTask:
        """The registration of ``fn``, registering it (with default options) if needed."""
        try:
            return self._by_fn[fn]
        except (KeyError, TypeError):
            return self.register(fn)

    def resolve(self, name: str) -> RegisteredTask:
        """The function to run for ``name``; TaskNotRegistered if it may not or can't run."""
        found = self._tasks.get(name)
        if found is not None:
            return found
        module_name, sep, qualname = name.partition(":")
        if not sep or not module_name or not qualname or "<" in qualname:
            raise TaskNotRegistered(f"{name!r} is not a valid task name")
        if module_name.split(".")[0] not in self.packages:
            raise TaskNotRegistered(
                f"task {name!r} is not registered in this worker and its module is not part "
                f"of the application; register it (@tasks.task) or import it in the app"
            )
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise TaskNotRegistered(f"task {name!r} can't be found: {exc}") from exc
        if not callable(target):
            raise TaskNotRegistered(f"task {name!r} is not a function")
        return self.register(target, name=name)
