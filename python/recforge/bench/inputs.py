"""Seeded benchmark inputs: a power-law users x items matrix, dense embeddings, their adjacency.

Sizes (users x items, interactions; dense queries x items x dims):

* ``small``  — 6,000 x 3,000, ~300k; dense 2,000 x 20,000 x 64 (seconds; what the tests run)
* ``medium`` — 50,000 x 20,000, ~3M; dense 20,000 x 100,000 x 64
* ``large``  — 138,000 x 27,000, ~20M (MovieLens-20M's shape); dense 50,000 x 200,000 x 64

User activity is log-normal (a long tail of heavy users, >= 5 items each) and item popularity
follows rank^-0.8, as in MovieLens; repeated draws collapse, so nnz ends near the target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SIZES = {
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
                          user_sigma: float = 1.5, item_exponent: float = 0.8) -> sp.csr_matrix:
    """A seeded binary users x items CSR with log-normal user activity and power-law items."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -item_exponent
    item_cdf = np.cumsum(weights[rng.permutation(n_items)])
    item_cdf /= item_cdf[-1]
    activity = rng.lognormal(0.0, user_sigma, size=n_users)
    sizes = np.clip(np.round(activity * (1.1 * nnz / activity.sum())), 5, max(5, n_items // 3)).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
    items = np.minimum(np.searchsorted(item_cdf, rng.random(users.size)), n_items - 1)
    keys = np.unique(users * n_items + items)
    return sp.csr_matrix((np.ones(keys.size, dtype=np.float32), (keys // n_items, keys % n_items)),
                         shape=(n_users, n_items))


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
