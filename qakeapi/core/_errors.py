"""Helpers for exceptions crossing task groups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["single_exception"]


@contextmanager
def single_exception() -> Iterator[None]:
    """Re-raise a task group's lone exception as itself, not as an exception group.

    A lifespan body that fails (a startup hook, a test assertion) then surfaces the error the
    user wrote, while groups of several real errors stay groups."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
