"""Shared pieces of the benchmark scripts: seeded inputs, real data, timing, agreement checks."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    env = os.environ.get("RECFORGE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def powerlaw_interactions(n_users: int = 138_000, n_items: int = 27_000, nnz: int = 20_000_000,
                          user_sigma: float = 2.1, item_exponent: float = 0.8,
                          seed: int = 0) -> sp.csr_matrix:
    """A seeded users x items binary matrix shaped like MovieLens-20M.

    User activity is log-normal (sigma 2.1: a long tail of heavy users, at least 20 items each,
    as in MovieLens) and item popularity follows rank^-item_exponent. Each user draws its items
    by popularity; repeated draws collapse, and the draw sizes are rescaled once so the matrix
    ends up with close to ``nnz`` distinct interactions. At the defaults (138k x 27k, 20M) the
    item-item product R^T R has about 30 G multiply-adds, like MovieLens-20M's 28 G.
    """
    rng = np.random.default_rng(seed)
    item_cdf = np.arange(1, n_items + 1, dtype=np.float64) ** -item_exponent
    item_cdf = np.cumsum(item_cdf[rng.permutation(n_items)])
    item_cdf /= item_cdf[-1]
    base = rng.lognormal(0.0, user_sigma, size=n_users)
    lo, hi = min(20, n_items), max(1, n_items // 3)

    def draw(scale: float) -> np.ndarray:
        sizes = np.clip(np.round(base * scale), lo, hi).astype(np.int64)
        users = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
        items = np.minimum(np.searchsorted(item_cdf, rng.random(users.size)), n_items - 1)
        return np.unique(users * n_items + items)

    scale = nnz / base.sum()
    keys = draw(scale)
    for _ in range(2):
        scale *= nnz / keys.size
        keys = draw(scale)
    return sp.csr_matrix((np.ones(keys.size, dtype=np.float32), (keys // n_items, keys % n_items)),
                         shape=(n_users, n_items))


def cached_powerlaw_interactions(**kwargs) -> sp.csr_matrix:
    """powerlaw_interactions, cached as .npz under ~/.cache/recforge-bench (generation takes minutes)."""
    key = "_".join(f"{k}={kwargs[k]}" for k in sorted(kwargs)) or "default"
    path = Path.home() / ".cache" / "recforge-bench" / f"powerlaw_{key}.npz"
    if path.exists():
        return sp.load_npz(path).tocsr()
    R = powerlaw_interactions(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    sp.save_npz(path, R)
    return R


def ml100k() -> sp.csr_matrix:
    """MovieLens 100K ratings as a users x items float32 CSR."""
    raw = np.loadtxt(data_root() / "ml-100k" / "u.data", dtype=np.int64)
    return sp.csr_matrix((raw[:, 2].astype(np.float32), (raw[:, 0] - 1, raw[:, 1] - 1)))


def gowalla_train() -> sp.csr_matrix:
    """The LightGCN Gowalla train split ("user item item ..." per line) as a binary CSR."""
    rows, cols = [], []
    with open(data_root() / "lightgcn-gowalla" / "train.txt") as f:
        for line in f:
            parts = np.array(line.split(), dtype=np.int64)
            if parts.size > 1:
                rows.append(np.full(parts.size - 1, parts[0]))
                cols.append(parts[1:])
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)))


def measure(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> tuple[float, float, object]:
    """(median seconds, spread max-min, last result) over ``repeat`` runs after ``warmup`` runs."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times) - min(times), result


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """(median seconds over ``repeats`` runs after one warm-up run, last result)."""
    median, _, result = measure(fn, repeat=repeats, warmup=1)
    return median, result


def print_table(rows: list[dict], columns: list[str]) -> None:
    """A plain fixed-width table (benchmarks avoid optional dependencies)."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))
