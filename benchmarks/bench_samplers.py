"""Negative sampling for one BPR epoch on LightGCN Gowalla (810k interactions, one negative each).

recforge.torch.samplers.UniformNegativeSampler (compiled, counter-based RNG) against the same
exact algorithm written in vectorised numpy (one global searchsorted over per-user keys), in one
process, per batch size. Both are checked to never return a positive. Medians over repeats.

    python benchmarks/bench_samplers.py --threads 2
"""
from __future__ import annotations

import argparse

import numpy as np

import os
import time
from pathlib import Path
import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import dataset_matrix  # noqa: E402
from recforge.bench.timing import measure as timed  # noqa: E402


def median_time(fn, repeats):
    timing, out = timed(fn, repeat=repeats, warmup=0)
    return timing.median, out


def print_table(rows, columns):
    print("  ".join(f"{c:>16}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>16}" if not isinstance(row[c], float) else f"{row[c]:16.4f}" for c in columns))


class NumpyUniformSampler:
    """j = r + #{k : p_k - k <= r}, with every user's keys u (n + 1) + p_k - k in one sorted array."""

    def __init__(self, X):
        indptr = X.indptr.astype(np.int64)
        degree = np.diff(indptr)
        rank = np.arange(X.nnz, dtype=np.int64) - np.repeat(indptr[:-1], degree)
        rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), degree)
        self.n = X.shape[1]
        self.keys = rows * (self.n + 1) + X.indices.astype(np.int64) - rank
        self.indptr, self.free = indptr, self.n - degree

    def sample(self, users, rng):
        r = rng.integers(0, self.free[users])
        return r + np.searchsorted(self.keys, users * (self.n + 1) + r, side="right") - self.indptr[users]


def epoch(sample, users, batch):
    return [sample(users[s:s + batch]) for s in range(0, users.size, batch)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from recforge.torch.samplers import UniformNegativeSampler

    X = dataset_matrix("gowalla")
    X.sum_duplicates()
    users = np.random.default_rng(0).permutation(np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)))
    dense_check = X.tocsr()
    rows = []
    for batch in (2048, 8192, users.size):
        samplers = {
            "recforge 1 thread": UniformNegativeSampler(X, num_threads=1),
            f"recforge {args.threads} threads": UniformNegativeSampler(X, num_threads=args.threads),
        }
        numpy_sampler, rng = NumpyUniformSampler(X), np.random.default_rng(0)
        cases = {name: (lambda s=s: epoch(lambda u: s.sample(u, 1)[:, 0], users, batch)) for name, s in samplers.items()}
        cases["numpy searchsorted"] = lambda: epoch(lambda u: numpy_sampler.sample(u, rng), users, batch)
        base = None
        for name, fn in cases.items():
            seconds, out = median_time(fn, args.repeats)
            negatives = np.concatenate(out)
            assert not dense_check[users, negatives].any(), f"{name} returned a positive"
            base = base or seconds
            rows.append({"batch": batch, "sampler": name, "median s/epoch": f"{seconds:.3f}",
                         "vs first": f"{seconds / base:.2f}x"})
    print_table(rows, ["batch", "sampler", "median s/epoch", "vs first"])


if __name__ == "__main__":
    main()
