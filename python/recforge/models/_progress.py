"""Progress bars for long fits: tqdm when installed (``pip install recforge[progress]``), else none."""
from __future__ import annotations


class NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "NoBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar that appears only when the work lasts over half a second, or a silent stand-in."""
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return NoBar()
    return tqdm(total=total, desc=desc, delay=0.5, leave=False)
