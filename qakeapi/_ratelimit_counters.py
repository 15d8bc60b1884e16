"""What every rate-limit storage implements: fixed-window :class:`Counters` answering a hit
with a :class:`Window`, and the check that a stored window is sane (``fresh_window``)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import NamedTuple

__all__ = ["Counters", "Window", "fresh_window"]


class Window(NamedTuple):
    hits: int
    """Hits in the current window, this one included."""
    reset_in: float
    """Seconds until the window ends."""


class Counters(ABC):
    """Fixed-window counters in one storage."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection."""

    @abstractmethod
    async def hit(self, key: str, period: float) -> Window:
        """Count one hit on ``key``; opens a ``period``-second window when none is open."""


def fresh_window(count: object, reset_at: object, now: float, period: float) -> bool:
    """True when a stored ``(count, reset_at)`` is not a usable open window."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return True
    if isinstance(reset_at, bool) or not isinstance(reset_at, (int, float)):
        return True
    return not (math.isfinite(reset_at) and now < reset_at <= now + period)
