"""Where an epoch's time goes: seconds accumulated per named section."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional


class SectionTimer:
    """Accumulates wall-clock seconds per section name until :meth:`reset`.

    ``with timer.section("propagation"): ...`` adds the block's duration to
    ``timer.seconds["propagation"]``. Sections may nest (the outer one includes the inner one).
    The training loop times its own sections ("data", "forward", "backward", "optimizer",
    "validate") in the timer it is given and stores each epoch's totals in the history; a model
    adds its own by closing over the same timer in its step function. On CUDA, kernels run
    asynchronously: set ``synchronize`` (the loop does with ``TrainConfig(sync_timing=True)``) to
    wait for the device at each section boundary, so that seconds are device seconds.
    """

    def __init__(self, synchronize: Optional[Callable[[], None]] = None):
        self.seconds: dict[str, float] = {}
        self.synchronize = synchronize

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        if self.synchronize is not None:
            self.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.synchronize is not None:
                self.synchronize()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def reset(self) -> dict[str, float]:
        """The accumulated seconds (a new dict), and start again from zero."""
        out, self.seconds = self.seconds, {}
        return out
