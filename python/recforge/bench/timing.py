"""Honest timings: untimed warm-up runs, then several timed runs; median and spread."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Timing:
    """Seconds of the timed runs of one measurement."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the repetitions disagree (0.05 = 5%)."""
        return (self.max - self.min) / self.median if self.median > 0 else 0.0


def measure(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1,
            sync: Callable[[], None] | None = None) -> tuple[Timing, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times timed; (Timing, last result).

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before the clock stops, so that
    asynchronous device work is counted.
    """
    result = None
    for _ in range(warmup):
        result = fn()
        if sync is not None:
            sync()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - start)
    return Timing(times), result
