"""Which functions a worker may run.

Task names are ``module:qualname``. A worker runs a stored name only if it is

* a function registered with this queue (``@tasks.task``, ``tasks.register(fn)``, or any
  function passed to ``add_task`` in this process), or
* a module-level function *defined* in a module of the application's own package, found in
  that module's namespace under exactly the stored name (``__module__`` and ``__qualname__``
  equal): never by walking attributes into what the module imported.

In strict mode only registered functions run. Anything else is refused before anything
outside the application's package is imported, so a row in the queue can never make a
worker import or call other code.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..exceptions import TaskNotRegistered

__all__ = ["RegisteredTask", "TaskOptions", "TaskRegistry", "task_name"]

logger = logging.getLogger("qakeapi.worker")

_NEVER_APP_PACKAGES = frozenset({"qakeapi", "__main__", "builtins"})


@dataclass(slots=True, frozen=True)
class TaskOptions:
    """Per-function defaults; ``None`` means "use the queue's setting"."""

    max_retries: int | None = None
    timeout: float | None = None
    priority: int | None = None
    no_retry_on: tuple[type[BaseException], ...] = ()
    auto_remove: bool | None = None


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


def _not_ours(name: str, why: str) -> TaskNotRegistered:
    return TaskNotRegistered(f"task {name!r} is not a task of this application: {why}")


def _is_dotted_name(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


class TaskRegistry:
    """Registered functions, and the packages whose module-level functions may run by name."""

    def __init__(self, packages: Iterable[str] = (), *, strict: bool = False) -> None:
        self._tasks: dict[str, RegisteredTask] = {}
        self._by_fn: dict[Any, RegisteredTask] = {}
        self.packages: set[str] = set(packages)
        self.strict = strict
        """Run registered functions only (``QUEUE_STRICT``)."""

    def allow_package(self, module_name: str) -> None:
        """Allow functions of ``module_name``'s top-level package (the app's own code).

        Never the standard library's or qakeapi's: their functions can import or run anything.
        """
        top = module_name.split(".")[0]
        if not _is_dotted_name(module_name) or top in _NEVER_APP_PACKAGES:
            return
        if top in sys.stdlib_module_names:
            logger.warning("the app's package %r has the name of a standard-library module: "
                           "workers run only its registered functions (@tasks.task)", top)
            return
        self.packages.add(top)

    @property
    def has_registrations(self) -> bool:
        """Some function is registered (by the app, or by running or adding it)."""
        return bool(self._tasks)

    def _in_app(self, module_name: str) -> bool:
        return module_name.split(".")[0] in self.packages

    def register(
        self, fn: Callable[..., Any], *, name: str | None = None,
        options: TaskOptions | None = None,
    ) -> RegisteredTask:
        task = RegisteredTask(name or task_name(fn), fn, _is_async(fn), options or TaskOptions())
        self._tasks[task.name] = task
        self._by_fn[fn] = task
        if name is not None:
            with contextlib.suppress(TypeError):
                self._tasks.setdefault(task_name(fn), task)  # the name add_task stores
        return task

    def for_function(self, fn: Callable[..., Any]) -> RegisteredTask:
        """The registration of ``fn``, registering it (with default options) if needed.

        In strict mode an unregistered function is refused (TypeError): a separate worker
        would not know it."""
        try:
            return self._by_fn[fn]
        except (KeyError, TypeError):
            pass
        if self.strict:
            raise TypeError(
                f"{task_name(fn)} is not registered and the queue is in strict mode "
                f"(QUEUE_STRICT): register it with @tasks.task or tasks.register(fn)")
        return self.register(fn)

    def resolve(self, name: str) -> RegisteredTask:
        """The function to run for ``name``; TaskNotRegistered if it may not or can't run."""
        found = self._tasks.get(name)
        if found is not None:
            return found
        if self.strict:
            raise _not_ours(name, "it is not registered and the queue is in strict mode")
        module_name, sep, qualname = name.partition(":")
        if not sep or not _is_dotted_name(module_name) or not qualname.isidentifier():
            raise _not_ours(name, "only a registered function or a module-level function "
                                  "named 'package.module:function' can run")
        if qualname.startswith("__") or module_name == "__main__":
            raise _not_ours(name, "dunder names and __main__ are never tasks")
        if not self._in_app(module_name):
            raise _not_ours(name, "its module is not in the application's package "
                                  f"({', '.join(sorted(self.packages)) or 'none known'}); "
                                  f"register it (@tasks.task) in the app")
        fn = vars(self._app_module(name, module_name)).get(qualname)
        if not inspect.isfunction(fn):
            raise _not_ours(name, f"{module_name} defines no function {qualname!r}")
        if fn.__module__ != module_name or fn.__qualname__ != qualname:
            raise _not_ours(name, f"{module_name}.{qualname} is {fn.__module__}:"
                                  f"{fn.__qualname__}, defined elsewhere")
        return self.register(fn, name=name)

    def _app_module(self, name: str, module_name: str) -> ModuleType:
        """``module_name`` (inside the app's package), imported if it is not yet."""
        module = sys.modules.get(module_name)
        if module is None:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                logger.warning("importing %s for task %s failed", module_name, name,
                               exc_info=True)
                raise _not_ours(name, f"its module can't be imported: {exc!r}") from exc
        if not isinstance(module, ModuleType):
            raise _not_ours(name, f"{module_name} is not a module")
        return module
