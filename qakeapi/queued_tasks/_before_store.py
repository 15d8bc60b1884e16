"""``@tasks.before_store`` hooks: see, and change, a task before it is built and stored.

A hook gets a :class:`NewTask` — the task's name, its arguments, its options and its initial
context, all mutable — and returns nothing. What it leaves there is checked exactly like
what ``add_task`` was given. A hook that raises refuses the ``add_task`` call: its exception
goes to the caller (with a note naming the hook) and nothing is stored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HOOK_OPTIONS", "BeforeStoreHook", "NewTask", "check_hook", "run_hooks"]

HOOK_OPTIONS = ("parent", "delay", "priority", "max_retries", "timeout", "unique_key",
                "auto_remove")
"""The options a hook sees (and may set) in ``NewTask.options``."""


@dataclass
class NewTask:
    """A task about to be stored, as ``add_task`` was given it (``task_kwargs`` merged into
    ``kwargs``). ``options`` holds the keys of ``HOOK_OPTIONS`` (None = not given)."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)


BeforeStoreHook = Callable[[NewTask], None]


def _hook_name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


def check_hook(hook: object) -> BeforeStoreHook:
    """A plain callable; ``add_task`` is not awaited, so an ``async def`` hook is refused."""
    if not callable(hook):
        raise TypeError(f"before_store takes a function, got {hook!r}")
    if inspect.iscoroutinefunction(hook):
        raise TypeError(f"before_store hook {_hook_name(hook)} must be a plain function: "
                        f"add_task is not awaited, so an async def hook can't run")
    return hook


def run_hooks(hooks: Sequence[BeforeStoreHook], task: NewTask) -> None:
    """Run every hook in order; a failing one refuses the task, naming the hook."""
    for hook in hooks:
        try:
            returned = hook(task)
        except Exception as exc:
            exc.add_note(f"raised by before_store hook {_hook_name(hook)} for task "
                         f"{task.name}: the task was not stored")
            raise
        if returned is not None:
            if inspect.isawaitable(returned) and hasattr(returned, "close"):
                returned.close()
            raise TypeError(f"before_store hook {_hook_name(hook)} returned {returned!r}; "
                            f"a hook changes the NewTask it is given and returns None")
    unknown = sorted(set(task.options) - set(HOOK_OPTIONS))
    if unknown:
        raise ValueError(f"before_store hooks set unknown option(s) {', '.join(unknown)} on "
                         f"task {task.name}; options are {', '.join(HOOK_OPTIONS)}")
