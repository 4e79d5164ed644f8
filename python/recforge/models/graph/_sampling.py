"""Uniform negative items for BPR, never one of the user's training positives (vectorised)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class PositiveLookup:
    """Membership of (user, item) pairs in a users x items CSR via sorted int64 keys."""

    def __init__(self, R: sp.csr_matrix):
        R = R.tocsr()
        R.sort_indices()
        self.n_items = R.shape[1]
        rows = np.repeat(np.arange(R.shape[0], dtype=np.int64), np.diff(R.indptr))
        self.keys = rows * self.n_items + R.indices.astype(np.int64)  # sorted: rows, then columns
        self.counts = np.diff(R.indptr)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        if self.keys.size == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return self.keys[pos] == keys

def sample_negatives(lookup: PositiveLookup, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One item per user drawn uniformly from the items the user has not interacted with.

    Rejection sampling: draw uniformly from all items, redraw the draws that hit a positive. Each
    accepted draw is uniform over the user's non-positives. Users with every item positive are
    refused (no negative exists).
    """
    if np.any(lookup.counts[users] >= lookup.n_items):
        raise ValueError("a user has interacted with every item: no negative item exists")
    items = rng.integers(0, lookup.n_items, size=users.size)
    todo = np.flatnonzero(lookup.contains(users, items))
    while todo.size:
        items[todo] = rng.integers(0, lookup.n_items, size=todo.size)
        todo = todo[lookup.contains(users[todo], items[todo])]
    return items
