"""Helpers of the content benchmark scripts (bench_content_quality.py, bench_content_speed.py):
where the data is, a median timer and a plain table. Scripts, not pytest-benchmark suites."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    env = os.environ.get("RECFORGE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def measure(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float, object]:
    """(median seconds, spread max-min, last result) over ``repeat`` runs after one warm-up run."""
    result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times) - min(times), result


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))
