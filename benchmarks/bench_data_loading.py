"""Loading a large interactions table: recforge vs plain pandas / pyarrow, in one process.

Writes a seeded synthetic table (user, item, rating, timestamp; power-law-ish ids) as CSV and
Parquet under --dir (default /tmp/recforge_bench_data), then reads each file with every reader
and prints the median time and the peak memory of each call (RSS sampled every 5 ms by a
background thread, minus the RSS just before the call). "result MB" is what the call returns
(for recforge: the int32/int32/float32/int64 columns plus the id vocabularies). Results are
checked to agree: recforge's codes equal pandas.factorize(sort=True) codes, values equal.

    python benchmarks/bench_data_loading.py --rows 20000000
    python benchmarks/bench_data_loading.py --rows 1000000 --repeat 3
    python benchmarks/bench_data_loading.py --only "recforge read_csv"   # one reader, fresh process
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402


class PeakRSS:
    """Peak resident memory above the starting RSS while the block runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        import psutil
        self.proc = psutil.Process()

    def __enter__(self) -> "PeakRSS":
        self.start = self.proc.memory_info().rss
        self.peak = self.start
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

    @property
    def increase_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def make_files(rows: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = folder / f"ratings_{rows}.csv", folder / f"ratings_{rows}.parquet"
    if csv_path.exists() and parquet_path.exists():
        return csv_path, parquet_path
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 150, 10), max(rows // 700, 10)
    users = (n_users * rng.random(rows) ** 2).astype(np.int64) * 7 + 1000  # sparse, skewed ids
    items = (n_items * rng.random(rows) ** 3).astype(np.int64) * 3 + 1
    ratings = rng.integers(1, 11, rows) / 2.0
    times = 1_000_000_000 + rng.integers(0, 300_000_000, rows)
    table = pa.table({"userId": users, "movieId": items, "rating": ratings, "timestamp": times})
    pcsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def result_mb(obj: object) -> float:
    if hasattr(obj, "users"):  # Interactions
        arrays = [obj.users, obj.items, obj.values, obj.timestamps, obj.user_ids.to_numpy(), obj.item_ids.to_numpy()]
        return sum(a.nbytes for a in arrays if a is not None) / 2**20
    if hasattr(obj, "memory_usage"):  # pandas
        return float(obj.memory_usage(deep=True).sum()) / 2**20
    if hasattr(obj, "nbytes"):  # arrow table
        return obj.nbytes / 2**20
    return sum(result_mb(x) for x in obj) if isinstance(obj, tuple) else float("nan")


def run_case(fn, repeat: int) -> tuple[float, float, object]:
    times, peaks, result = [], [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        _release_arrow()
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        peaks.append(mem.increase_mb)
    return statistics.median(times), max(peaks), result


def _release_arrow() -> None:
    try:
        import pyarrow as pa
        pa.default_memory_pool().release_unused()
    except Exception:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/recforge_bench_data"))
    parser.add_argument("--only", default=None,
                        help="run only the readers whose name contains this text (peak memory in a fresh process)")
    args = parser.parse_args()

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    from recforge.data import read_csv, read_parquet

    t0 = time.perf_counter()
    csv_path, parquet_path = make_files(args.rows, args.dir)
    print(f"{args.rows:,} rows; CSV {csv_path.stat().st_size / 2**20:.0f} MB, Parquet "
          f"{parquet_path.stat().st_size / 2**20:.0f} MB (prepared in {time.perf_counter() - t0:.1f} s); "
          f"pandas {pd.__version__}, pyarrow {pa.__version__}, arrow threads {pa.cpu_count()}")
    for path in (csv_path, parquet_path):  # warm the page cache so the first reader is not penalised
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    raw_mb = args.rows * (4 + 4 + 4 + 8) / 2**20
    print(f"raw arrays (int32 user, int32 item, float32 rating, int64 time): {raw_mb:.0f} MB")

    def pandas_codes(df):
        u, _ = pd.factorize(df["userId"], sort=True)
        i, _ = pd.factorize(df["movieId"], sort=True)
        return df, u, i

    cases = [
        ("csv", "pandas.read_csv (C engine)", lambda: pd.read_csv(csv_path)),
        ("csv", "pandas.read_csv + factorize ids", lambda: pandas_codes(pd.read_csv(csv_path))),
        ("csv", "pandas.read_csv(engine='pyarrow')", lambda: pd.read_csv(csv_path, engine="pyarrow")),
        ("csv", "pyarrow.csv.read_csv", lambda: pcsv.read_csv(csv_path)),
        ("csv", "recforge read_csv", lambda: read_csv(csv_path, "userId", "movieId", "rating", "timestamp")),
        ("parquet", "pandas.read_parquet", lambda: pd.read_parquet(parquet_path)),
        ("parquet", "pyarrow.parquet.read_table", lambda: pq.read_table(parquet_path)),
        ("parquet", "recforge read_parquet",
         lambda: read_parquet(parquet_path, "userId", "movieId", "rating", "timestamp")),
    ]
    if args.only:
        cases = [c for c in cases if args.only in c[1]]
    rows, results = [], {}
    for fmt, name, fn in cases:
        seconds, peak, result = run_case(fn, args.repeat)
        results[name] = result
        rows.append({"format": fmt, "reader": name, "median s": f"{seconds:.2f}",
                     "peak MB (+RSS)": f"{peak:.0f}", "result MB": f"{result_mb(result):.0f}"})
        print(f"  {name}: {seconds:.2f} s, peak +{peak:.0f} MB", flush=True)
        if not name.startswith("recforge") and name != "pandas.read_csv + factorize ids":
            results[name] = None  # keep memory flat for the next case
        result = None
        gc.collect()
    print()
    print_table(rows, ["format", "reader", "median s", "peak MB (+RSS)", "result MB"])

    if args.only:
        return
    # agreement: recforge codes == pandas.factorize(sort=True) codes, values equal
    df, u_codes, i_codes = results["pandas.read_csv + factorize ids"]
    for name in ("recforge read_csv", "recforge read_parquet"):
        inter = results[name]
        assert len(inter) == len(df)
        assert np.array_equal(inter.users, u_codes) and np.array_equal(inter.items, i_codes)
        assert np.array_equal(inter.values, df["rating"].to_numpy(np.float32))
        assert np.array_equal(inter.timestamps, df["timestamp"].to_numpy())
    print("\nagreement: recforge codes equal pandas.factorize(sort=True), values and timestamps equal")
    by = {r["reader"]: float(r["median s"]) for r in rows}
    print(f"time ratio recforge/pandas.read_csv: {by['recforge read_csv'] / by['pandas.read_csv (C engine)']:.2f}; "
          f"recforge/pyarrow.csv: {by['recforge read_csv'] / by['pyarrow.csv.read_csv']:.2f}; "
          f"recforge/pyarrow.parquet: {by['recforge read_parquet'] / by['pyarrow.parquet.read_table']:.2f}")


if __name__ == "__main__":
    main()
