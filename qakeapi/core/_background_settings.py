"""Limits of the in-process background task manager."""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    BACKGROUND_MAX_CONCURRENCY,
    BACKGROUND_MAX_PENDING,
    BACKGROUND_RETAIN_FINISHED,
    BACKGROUND_RETAIN_SECONDS,
    BACKGROUND_THREAD_LIMIT,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    SETTING_MAX_COUNT,
    SHUTDOWN_GRACE_SECONDS,
)
from ._options import check_count, check_seconds

__all__ = ["BackgroundSettings"]


@dataclass(slots=True, frozen=True)
class BackgroundSettings:
    max_concurrency: int = BACKGROUND_MAX_CONCURRENCY
    """Tasks running at once (coroutines and threads together)."""
    max_pending: int = BACKGROUND_MAX_PENDING
    """Pending tasks held before ``add_task`` waits for room."""
    thread_limit: int = BACKGROUND_THREAD_LIMIT
    """Threads for plain-function tasks (the manager's own limiter)."""
    retain_finished: int = BACKGROUND_RETAIN_FINISHED
    """Finished records kept, oldest evicted first."""
    retain_seconds: float = BACKGROUND_RETAIN_SECONDS
    """Finished records older than this are evicted."""
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS
    """Seconds shutdown waits for unfinished tasks before cancelling them."""
    retry_base_delay: float = RETRY_BASE_DELAY
    """Delay before the first retry; doubled per attempt, +/- jitter (as queued tasks)."""
    retry_max_delay: float = RETRY_MAX_DELAY
    """Longest delay between attempts."""

    def __post_init__(self) -> None:
        def fix(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        for name in ("max_concurrency", "max_pending", "thread_limit"):
            fix(name, check_count(f"BackgroundSettings.{name}", getattr(self, name),
                                  minimum=1, maximum=SETTING_MAX_COUNT))
        fix("retain_finished", check_count("BackgroundSettings.retain_finished",
                                           self.retain_finished, maximum=SETTING_MAX_COUNT))
        for name in ("retain_seconds", "shutdown_grace", "retry_base_delay", "retry_max_delay"):
            fix(name, check_seconds(f"BackgroundSettings.{name}", getattr(self, name)))
