"""Loading an interactions table: recforge's readers against pandas and pyarrow, in one process.

Group "read <format> <size>": a seeded table (recforge.bench.inputs.ratings_table: userId,
movieId, rating, timestamp with sparse, skewed ids) written once as CSV and Parquet under
$RECFORGE_BENCH_CACHE (default: the temp folder), then read by every reader. Checked before
timing: every reader returns all rows with the same rating total; recforge's user and item
codes equal ``pandas.factorize(sort=True)`` codes and its values and timestamps equal the
table's. The peak RSS increase of one read (psutil, sampled every 5 ms) and the size of the
result are stored in the JSON's extra_info.

    pytest benchmarks/bench_data_loading.py --benchmark-only -k large    # 20M rows
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recforge.bench.inputs import cache_dir, ratings_table

SIZES = ("tiny", "small", "large")
ROWS = {"tiny": 20_000, "small": 1_000_000, "large": 20_000_000}
COLUMNS = ("userId", "movieId", "rating", "timestamp")
READERS = {
    "csv": ["recforge read_csv", "pandas.read_csv", "pandas.read_csv(engine=pyarrow)", "pyarrow.csv.read_csv"],
    "parquet": ["recforge read_parquet", "pandas.read_parquet", "pyarrow.parquet.read_table"],
}


class PeakRSS:
    """Peak resident memory above the starting RSS while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> "PeakRSS":
        import psutil

        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def files(size: str) -> dict[str, Path]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    folder = cache_dir()
    rows = ROWS[size]
    paths = {"csv": folder / f"ratings_{rows}.csv", "parquet": folder / f"ratings_{rows}.parquet"}
    if not all(p.exists() for p in paths.values()):
        folder.mkdir(parents=True, exist_ok=True)
        table = ratings_table(rows)
        pcsv.write_csv(table, paths["csv"])
        pq.write_table(table, paths["parquet"])
    return paths


def reader(name: str, path: Path):
    import pandas as pd
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from recforge.data import read_csv, read_parquet

    return {
        "recforge read_csv": lambda: read_csv(path, *COLUMNS),
        "pandas.read_csv": lambda: pd.read_csv(path),
        "pandas.read_csv(engine=pyarrow)": lambda: pd.read_csv(path, engine="pyarrow"),
        "pyarrow.csv.read_csv": lambda: pcsv.read_csv(path),
        "recforge read_parquet": lambda: read_parquet(path, *COLUMNS),
        "pandas.read_parquet": lambda: pd.read_parquet(path),
        "pyarrow.parquet.read_table": lambda: pq.read_table(path),
    }[name]


def rating_total(result) -> tuple[int, float]:
    if hasattr(result, "users"):                               # recforge Interactions
        return len(result), float(np.sum(result.values, dtype=np.float64))
    column = result["rating"]
    values = column.to_numpy() if hasattr(column, "to_numpy") else np.asarray(column)
    return len(result), float(np.sum(values, dtype=np.float64))


def check_recforge_codes(inter, size: str) -> None:
    import pandas as pd

    table = ratings_table(ROWS[size]).to_pandas()
    assert np.array_equal(inter.users, pd.factorize(table["userId"], sort=True)[0])
    assert np.array_equal(inter.items, pd.factorize(table["movieId"], sort=True)[0])
    assert np.array_equal(inter.values, table["rating"].to_numpy(np.float32))
    assert np.array_equal(inter.timestamps, table["timestamp"].to_numpy())


@pytest.mark.parametrize("name", [(fmt, r) for fmt, names in READERS.items() for r in names],
                         ids=lambda p: f"{p[0]}-{p[1]}")
def test_read_interactions(benchmark, size, name, threads):
    pytest.importorskip("pyarrow")
    pytest.importorskip("pandas")
    fmt, label = name
    path = files(size)[fmt]
    read = reader(label, path)
    benchmark.group = f"read {fmt} {size}"
    with PeakRSS() as mem:
        result = read()
    expected = ratings_table(ROWS[size])
    total = float(np.sum(expected["rating"].to_numpy(), dtype=np.float64))
    rows, got_total = rating_total(result)
    assert rows == ROWS[size] and np.isclose(got_total, total, rtol=1e-9), (rows, got_total, total)
    if label.startswith("recforge"):
        check_recforge_codes(result, size)
    benchmark.extra_info.update(rows=ROWS[size], file_mb=path.stat().st_size / 2**20,
                                peak_rss_increase_mb=(mem.peak - mem.start) / 2**20,
                                agreement="all rows, same rating total" + (", codes = pandas.factorize(sort=True)"
                                                                           if label.startswith("recforge") else ""))
    del result
    benchmark(read)
