"""Terminal output of the CLI: rich tables on stdout, tqdm progress bars on stderr."""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator


def stdout_console():
    """A rich Console for results; wide enough not to wrap tables when output is piped."""
    from rich.console import Console

    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(width=160, soft_wrap=False)
    return console


def note(message: str) -> None:
    """A side remark (skipped step, missing optional extra) on stderr."""
    print(message, file=sys.stderr, flush=True)


class Steps:
    """One tqdm bar over the named steps of a command; ``step(name)`` times each step.

    Long steps inside (model fits, evaluation over users) show their own nested bars. A
    background thread redraws the bar twice a second, so the elapsed time keeps moving during
    a step that reports no progress of its own (loading a large dataset, say).
    """

    REFRESH_S = 0.5

    def __init__(self, total: int, desc: str, enabled: bool = True):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr,
                        bar_format="{desc}: {n_fmt}/{total_fmt} steps |{bar}| {elapsed}")
        self.prefix = desc
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._ticker = None
        if enabled:
            self._ticker = threading.Thread(target=self._redraw, daemon=True)
            self._ticker.start()

    def _redraw(self) -> None:
        while not self._stop.wait(self.REFRESH_S):
            self.bar.refresh()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.bar.set_description_str(f"{self.prefix}: {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start
            self.bar.update(1)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.bar.close()

    def __enter__(self) -> "Steps":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
