"""Paired comparisons for benchmarks on a shared, noisy machine.

Runs are grouped in blocks; each block holds one run of every kind (say ``A`` with no
change, ``A2`` another run with no change, ``B`` with the change), in an order that rotates
from block to block. A block's difference ``B / A - 1`` is paired: load that comes and goes
(another benchmark on the same cores) hits the runs of one block alike and cancels out. The
A/A control ``A2 / A - 1`` is computed the same way from runs that differ in nothing: its
spread is the noise floor the B/A figure has to beat.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Difference", "block_orders", "difference"]

RESAMPLES = 10_000
CONFIDENCE = 0.95


def block_orders(kinds: Sequence[str], blocks: int) -> list[tuple[str, ...]]:
    """The run order of each block: every permutation of ``kinds`` in turn, so each kind
    runs first, second, ... equally often."""
    orders = list(itertools.permutations(kinds))
    return [orders[b % len(orders)] for b in range(blocks)]


@dataclass(frozen=True, slots=True)
class Difference:
    """Relative differences ``other / reference - 1``, one per block."""

    values: list[float]
    median: float
    median_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]

    def line(self) -> str:
        return (f"median {self.median:+6.2%} [95% CI {self.median_ci[0]:+6.2%}, "
                f"{self.median_ci[1]:+6.2%}]   mean {self.mean:+6.2%} "
                f"[{self.mean_ci[0]:+6.2%}, {self.mean_ci[1]:+6.2%}]")


def _interval(values: list[float], estimate: Callable[[list[float]], float],
              rng: random.Random) -> tuple[float, float]:
    """Percentile bootstrap interval of ``estimate`` over blocks resampled with
    replacement."""
    if len(values) < 2:
        return values[0], values[0]
    draws = sorted(estimate(rng.choices(values, k=len(values))) for _ in range(RESAMPLES))
    tail = (1 - CONFIDENCE) / 2
    return draws[int(tail * RESAMPLES)], draws[int((1 - tail) * RESAMPLES) - 1]


def difference(reference: Sequence[float], other: Sequence[float], *,
               seed: int = 11) -> Difference | None:
    """The paired relative difference of ``other`` over ``reference`` (same blocks, same
    order), its median and mean, each with a bootstrap confidence interval; None when no
    reference is above zero."""
    values = [o / r - 1 for r, o in zip(reference, other, strict=True) if r > 0]
    if not values:
        return None
    rng = random.Random(seed)
    mean = statistics.fmean
    median = statistics.median
    return Difference(values, median(values), _interval(values, median, rng),
                      mean(values), _interval(values, mean, rng))
