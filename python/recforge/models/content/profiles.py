r"""User profiles: per-user weights over the history items, summing to one.

A content model scores an item i for user u by the weighted mean of the history items'
similarities to i, :math:`\mathrm{score}(u, i) = \sum_{j \in H_u} w_{uj}\, s(j, i)`, which for
unit item vectors :math:`x` equals :math:`\langle p_u, x_i \rangle` with the profile
:math:`p_u = \sum_j w_{uj} x_j`. The weights, before dividing by their sum
:math:`\sum_j |\tilde w_{uj}|`:

- ``mean``: :math:`\tilde w_{uj} = 1`;
- ``rating``: :math:`\tilde w_{uj} = r_{uj}` (the stored value: a rating, a count or a weight);
- ``recency``: :math:`\tilde w_{uj} = 2^{-a_{uj} / h}` where :math:`a_{uj}` is the number of
  interactions the user made after their latest interaction with j (0 for the newest) and h
  the half-life in interactions.

An empty history gives an all-zero row.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

PROFILES = ("mean", "rating", "recency")


def profile_weights(rows: sp.csr_matrix, profile: str, sequences: Sequence[np.ndarray] | None = None,
                    half_life: float = 10.0) -> sp.csr_matrix:
    """Row-normalised weights (float64 CSR, the pattern of ``rows``) for ``profile``.

    ``sequences`` (oldest first, one per row) is needed by ``recency``; items of a row absent
    from its sequence count as the oldest.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    W = sp.csr_matrix(rows, dtype=np.float64, copy=True)
    W.sort_indices()
    if profile == "mean":
        W.data[:] = 1.0
    elif profile == "recency":
        if sequences is None or len(sequences) != W.shape[0]:
            raise ValueError("profile='recency' needs one ordered item sequence per history row")
        for r, seq in enumerate(sequences):
            lo, hi = W.indptr[r], W.indptr[r + 1]
            if lo == hi:
                continue
            seq = np.asarray(seq, dtype=np.int64)
            age = np.full(hi - lo, float(seq.size), dtype=np.float64)   # absent: older than anything
            if seq.size:
                # latest position of each item: scan the reversed sequence, first hit wins
                rev = seq[::-1]
                items, first = np.unique(rev, return_index=True)
                at = np.searchsorted(items, W.indices[lo:hi])
                at = np.minimum(at, items.size - 1)
                found = items[at] == W.indices[lo:hi]
                age[found] = first[at[found]]
            W.data[lo:hi] = np.exp2(-age / float(half_life))
    total = np.asarray(abs(W).sum(axis=1)).reshape(-1)
    scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    return sp.csr_matrix(sp.diags(scale) @ W)
