"""Progress bars: tqdm when installed (``pip install recforge[progress]``), else a silent stand-in."""
from __future__ import annotations


class NoBar:
    """The part of tqdm's interface recforge uses, showing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "NoBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int, desc: str, enabled: bool, *, delay: float = 0.0, leave: bool = True):
    """A tqdm bar (shown after ``delay`` seconds), or NoBar when disabled or tqdm is missing."""
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return NoBar()
    return tqdm(total=total, desc=desc, delay=delay, leave=leave)
