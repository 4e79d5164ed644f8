"""What the kernels' structural input validation costs, as a fraction of similarity_topk's time.

Item-item cosine (k=50) on the 20M-interaction synthetic matrix (recforge.bench.inputs.cached_powerlaw_interactions)
and on the LightGCN Gowalla train split. Times: median of the check alone
(recforge.kernels._validation.check_sparse_structure, plus the float32 overflow bound of
similarity_topk), and of similarity_topk with and without ``check_input``. Usage:

    python benchmarks/bench_validation.py [--threads 2] [--skip-20m] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from pathlib import Path
import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import dataset_matrix  # noqa: E402
from recforge.bench.timing import measure as timed  # noqa: E402

from recforge.bench.inputs import cached_powerlaw_interactions
from recforge.kernels import _validation as v
from recforge.kernels import similarity_topk
from recforge.kernels.similarity import _may_overflow_float32


def median_time(fn, repeats):
    timing, out = timed(fn, repeat=repeats, warmup=0)
    return timing.median, out


def measure(name: str, X, threads: int, repeats: int, k: int = 50) -> None:
    check, _ = median_time(lambda: v.check_sparse_structure(X, "X"), max(repeats, 7))
    bound, _ = median_time(lambda: _may_overflow_float32(X, None), max(repeats, 7))
    on, S_on = median_time(lambda: similarity_topk(X, k, metric="cosine", num_threads=threads), repeats)
    off, S_off = median_time(lambda: similarity_topk(X, k, metric="cosine", num_threads=threads,
                                                     check_input=False), repeats)
    assert (S_on != S_off).nnz == 0, "check_input changed the result"
    print(f"{name}: {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} entries, k={k}, threads={threads}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"  structural check      {check * 1e3:9.2f} ms  = {100 * check / on:.3f}% of similarity_topk")
    print(f"  float32 overflow bound {bound * 1e3:8.2f} ms  = {100 * bound / on:.3f}%")
    print(f"  similarity_topk       {on:9.3f} s (check_input=True), {off:.3f} s (check_input=False): "
          f"difference {100 * (on - off) / on:+.2f}% (noise included)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-20m", action="store_true")
    args = parser.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    G = dataset_matrix("gowalla")
    measure("gowalla item-item", G.T.tocsr(), args.threads, args.repeats)
    if not args.skip_20m:
        R = cached_powerlaw_interactions()
        measure("synthetic 20M item-item", R.T.tocsr(), args.threads, 1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
