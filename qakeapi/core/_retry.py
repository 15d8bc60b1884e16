"""Retry policy of background and queued tasks: exponential backoff with jitter, and when
not to retry."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..constants import RETRY_JITTER
from ..exceptions import NoRetry, Retry

__all__ = ["RetryDecision", "backoff_delay", "decide_retry"]


@dataclass(slots=True, frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0


def backoff_delay(attempt: int, base: float, maximum: float, jitter: float = RETRY_JITTER) -> float:
    """Delay before attempt ``attempt + 1``: ``base * 2**(attempt-1)``, capped, +/- jitter."""
    delay = min(maximum, base * (2 ** max(0, attempt - 1)))
    return max(0.0, float(delay * random.uniform(1 - jitter, 1 + jitter)))


def decide_retry(
    exc: BaseException,
    *,
    attempts: int,
    max_retries: int,
    no_retry_on: tuple[type[BaseException], ...],
    base_delay: float,
    max_delay: float,
) -> RetryDecision:
    """Whether a failed attempt (the ``attempts``-th) runs again, and after what delay."""
    if isinstance(exc, NoRetry) or (no_retry_on and isinstance(exc, no_retry_on)):
        return RetryDecision(False)
    if attempts > max_retries:
        return RetryDecision(False)
    if isinstance(exc, Retry) and exc.delay is not None:
        return RetryDecision(True, max(0.0, exc.delay))
    return RetryDecision(True, backoff_delay(attempts, base_delay, max_delay))
