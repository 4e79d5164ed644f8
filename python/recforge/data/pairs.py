"""Membership of (row, column) pairs in a sparse matrix."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def is_stored(X: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether (rows[i], cols[i]) is a stored entry of the canonical CSR X (one binary search
    over the row-major keys row * n_cols + col)."""
    n = np.int64(X.shape[1])
    keys = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr)) * n + X.indices
    if keys.size == 0:
        return np.zeros(np.shape(rows), dtype=bool)
    q = np.asarray(rows).astype(np.int64) * n + cols
    return keys[np.minimum(np.searchsorted(keys, q), keys.size - 1)] == q
