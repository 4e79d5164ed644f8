"""Seeded benchmark inputs: power-law users x items matrices, dense embeddings, exclusions, datasets.

One generator family serves ``recforge bench`` and the pytest-benchmark suites in benchmarks/.

Sizes (users x items, interactions; dense queries x items x dims):

* ``tiny``   — 600 x 300, ~6k; dense 200 x 1,000 x 64 (a second: what CI runs)
* ``small``  — 6,000 x 3,000, ~300k; dense 2,000 x 20,000 x 64 (seconds; what the tests run)
* ``medium`` — 50,000 x 20,000, ~3M; dense 20,000 x 100,000 x 64
* ``large``  — 138,000 x 27,000, ~20M (MovieLens-20M's shape); dense 50,000 x 200,000 x 64

User activity is log-normal (a long tail of heavy users) and item popularity follows
rank^-0.8, as in MovieLens; repeated draws collapse, so nnz ends near the target.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

SIZES = {
    "tiny": dict(users=600, items=300, nnz=6_000, queries=200, dense_items=1_000),
    "small": dict(users=6_000, items=3_000, nnz=300_000, queries=2_000, dense_items=20_000),
    "medium": dict(users=50_000, items=20_000, nnz=3_000_000, queries=20_000, dense_items=100_000),
    "large": dict(users=138_000, items=27_000, nnz=20_000_000, queries=50_000, dense_items=200_000),
}
DIM = 64
SEED = 0


@dataclass
class BenchInputs:
    """What every kernel case reads: R (users x items, binary float32), Q and V (float32)."""

    label: str
    R: sp.csr_matrix
    Q: np.ndarray
    V: np.ndarray


def powerlaw_interactions(n_users: int, n_items: int, nnz: int, seed: int = SEED,
                          user_sigma: float = 1.5, item_exponent: float = 0.8, min_per_user: int = 5,
                          oversample: float = 1.1, refine: int = 0) -> sp.csr_matrix:
    """A seeded binary users x items CSR with log-normal user activity and power-law items.

    Each user draws ``clip(round(a_u * s), min_per_user, n_items / 3)`` items with probability
    proportional to rank^-item_exponent (ranks shuffled), a_u ~ LogNormal(0, user_sigma) and
    s = oversample x nnz / sum(a). Repeated draws collapse; ``refine`` more rounds rescale s by
    nnz / (distinct pairs) and draw again, bringing the count closer to ``nnz``.
    (user_sigma=2.1, min_per_user=20, oversample=1, refine=2 at 138k x 27k x 20M: a matrix
    whose item-item product R^T R has about 30 G multiply-adds, like MovieLens-20M's 28 G.)
    """
    rng = np.random.default_rng(seed)
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -item_exponent
    item_cdf = np.cumsum(weights[rng.permutation(n_items)])
    item_cdf /= item_cdf[-1]
    activity = rng.lognormal(0.0, user_sigma, size=n_users)
    lo, hi = min(min_per_user, n_items), max(min_per_user, n_items // 3)

    def draw(scale: float) -> np.ndarray:
        sizes = np.clip(np.round(activity * scale), lo, hi).astype(np.int64)
        users = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
        items = np.minimum(np.searchsorted(item_cdf, rng.random(users.size)), n_items - 1)
        return np.unique(users * n_items + items)

    scale = oversample * nnz / activity.sum()
    keys = draw(scale)
    for _ in range(refine):
        scale *= nnz / keys.size
        keys = draw(scale)
    return sp.csr_matrix((np.ones(keys.size, dtype=np.float32), (keys // n_items, keys % n_items)),
                         shape=(n_users, n_items))


def exact_powerlaw_interactions(n_users: int, n_items: int, nnz: int, seed: int = SEED) -> sp.csr_matrix:
    """A seeded binary users x items matrix with exactly ``nnz`` interactions, power-law degrees.

    1.3 x nnz pairs are drawn with probabilities proportional to rank^-1 on both sides (ranks
    shuffled), duplicates dropped, topped up with uniform pairs if short, then nnz of them kept.
    One vectorised pass: seconds at 20M (the GPU benchmark's input).
    """
    rng = np.random.default_rng(seed)

    def cdf(n: int) -> np.ndarray:
        w = np.arange(1, n + 1, dtype=np.float64) ** -1.0
        w = w[rng.permutation(n)]
        return np.cumsum(w / w.sum())

    cu, ci = cdf(n_users), cdf(n_items)
    draw = int(nnz * 1.3)
    u = np.minimum(np.searchsorted(cu, rng.random(draw)), n_users - 1)
    i = np.minimum(np.searchsorted(ci, rng.random(draw)), n_items - 1)
    keys = np.unique(u.astype(np.int64) * n_items + i)
    while keys.size < nnz:
        extra = rng.integers(0, n_users * n_items, int((nnz - keys.size) * 1.2) + 1000, dtype=np.int64)
        keys = np.union1d(keys, extra)
    if keys.size > nnz:
        keys = np.sort(keys[rng.permutation(keys.size)[:nnz]])
    return sp.csr_matrix((np.ones(nnz, dtype=np.float32), (keys // n_items, keys % n_items)),
                         shape=(n_users, n_items))


def cache_dir() -> Path:
    """$RECFORGE_BENCH_CACHE, else recforge_bench under the temp folder."""
    env = os.environ.get("RECFORGE_BENCH_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "recforge_bench"


def cached_matrix(name: str, make: Callable[[], sp.csr_matrix]) -> sp.csr_matrix:
    """``make()``, saved as ``cache_dir()/name.npz`` the first time (large generators take minutes)."""
    path = cache_dir() / f"{name}.npz"
    if path.exists():
        return sp.load_npz(path).tocsr()
    R = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        sp.save_npz(tmp, R, compressed=False)
        os.replace(tmp, path)
    except OSError:
        pass
    return R


def cached_powerlaw_interactions(n_users: int = 138_000, n_items: int = 27_000, nnz: int = 20_000_000,
                                 seed: int = SEED) -> sp.csr_matrix:
    """The MovieLens-20M-like matrix: :func:`powerlaw_interactions` with heavier-tailed users
    (user_sigma=2.1, at least 20 items each, rescaled twice towards ``nnz``), cached with
    :func:`cached_matrix`. At the defaults: 19.66M interactions, 27.5 G multiply-adds in R^T R."""
    return cached_matrix(f"ml20m_like_{n_users}_{n_items}_{nnz}_{seed}", lambda: powerlaw_interactions(
        n_users, n_items, nnz, seed, user_sigma=2.1, min_per_user=20, oversample=1.0, refine=2))


def synthetic(size: str) -> BenchInputs:
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    s = SIZES[size]
    R = powerlaw_interactions(s["users"], s["items"], s["nnz"])
    rng = np.random.default_rng(SEED + 1)
    Q = rng.standard_normal((s["queries"], DIM), dtype=np.float32)
    V = rng.standard_normal((s["dense_items"], DIM), dtype=np.float32)
    return BenchInputs(f"synthetic {size} (seed {SEED})", R, Q, V)


def from_matrix(R: sp.spmatrix, label: str) -> BenchInputs:
    """A dataset's interactions (binarised); Q, V are seeded random user and item embeddings."""
    R = sp.csr_matrix(R, dtype=np.float32)
    R.sum_duplicates()
    R.data[:] = 1.0
    rng = np.random.default_rng(SEED + 1)
    Q = rng.standard_normal((R.shape[0], DIM), dtype=np.float32)
    V = rng.standard_normal((R.shape[1], DIM), dtype=np.float32)
    return BenchInputs(f"{label} (dense_topk: seeded random {DIM}-d user/item embeddings)", R, Q, V)


def bipartite_adjacency(R: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2 as float32 CSR (users first), computed with scipy."""
    A = sp.bmat([[None, R], [R.T, None]], format="csr", dtype=np.float64)
    deg = np.asarray(A.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
    A = sp.diags(inv) @ A @ sp.diags(inv)
    A = sp.csr_matrix(A, dtype=np.float32)
    A.sort_indices()
    return A


def random_exclusion(m: int, n: int, per_row: int, seed: int = 2) -> sp.csr_matrix:
    """An m x n binary CSR with about ``per_row`` distinct random columns per row (Poisson counts)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(per_row, size=m)
    rows = np.repeat(np.arange(m), counts)
    cols = rng.integers(0, n, size=rows.size)
    E = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(m, n))
    E.sum_duplicates()
    E.data[:] = 1.0
    return E


def planted_embeddings(n_users: int, n_items: int, dim: int = DIM, train_per_user: int = 20,
                       test_per_user: int = 5, seed: int = SEED):
    """(U, V, train, test) for an evaluation benchmark: random float32 embeddings, random train
    and held-out items per user (held-out items not in train), and each user's vector pulled
    towards the mean of its held-out items' vectors (x 3) so that hits are not all zero."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_users, dim), dtype=np.float32)
    V = rng.standard_normal((n_items, dim), dtype=np.float32)

    def random_rows(per_user: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(n_users), per_user)
        X = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, rng.integers(0, n_items, rows.size))),
                          shape=(n_users, n_items))
        X.sum_duplicates()
        X.data[:] = 1
        return X

    train = random_rows(train_per_user)
    test = random_rows(test_per_user)
    test = sp.csr_matrix(test - test.multiply(train))
    test.eliminate_zeros()
    counts = np.maximum(np.diff(test.indptr), 1)[:, None]
    U += (3.0 * (test @ V) / counts).astype(np.float32)
    return U, V, train, test


def ratings_table(rows: int, seed: int = SEED):
    """A seeded pyarrow table (userId, movieId, rating, timestamp) with sparse, skewed ids:
    about rows / 150 users and rows / 700 items, ratings 0.5..5 in halves."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 150, 10), max(rows // 700, 10)
    users = (n_users * rng.random(rows) ** 2).astype(np.int64) * 7 + 1000
    items = (n_items * rng.random(rows) ** 3).astype(np.int64) * 3 + 1
    ratings = rng.integers(1, 11, rows) / 2.0
    times = 1_000_000_000 + rng.integers(0, 300_000_000, rows)
    return pa.table({"userId": users, "movieId": items, "rating": ratings, "timestamp": times})
