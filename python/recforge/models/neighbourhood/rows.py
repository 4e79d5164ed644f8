"""Row-level helpers of the neighbourhood models: comparing, overwriting and looking up CSR
entries, and growing id vocabularies for partial_fit."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recforge.data.idmap import IdMap
from recforge.models.base import pattern


def rows_equal(A: sp.csr_matrix, B: sp.csr_matrix) -> np.ndarray:
    """Per row, whether A and B store the same entries with the same values."""
    if A.shape != B.shape:
        return np.zeros(A.shape[0], dtype=bool)
    diff = (A - B).tocsr()
    diff.eliminate_zeros()
    same_pattern = np.diff(pattern(A).multiply(pattern(B)).tocsr().indptr)
    return (np.diff(diff.indptr) == 0) & (same_pattern == np.diff(A.indptr)) & (same_pattern == np.diff(B.indptr))


def replace_entries(R: sp.csr_matrix, D: sp.csr_matrix) -> sp.csr_matrix:
    """R with D's stored entries written over it (stored zeros of either kept: ratings of 0)."""
    R, D = R.tocoo(), D.tocoo()
    n = np.int64(R.shape[1])
    kept = ~np.isin(R.row.astype(np.int64) * n + R.col, D.row.astype(np.int64) * n + D.col)
    out = sp.csr_matrix((np.r_[R.data[kept], D.data], (np.r_[R.row[kept], D.row], np.r_[R.col[kept], D.col])),
                        shape=R.shape)
    out.sum_duplicates()
    return out


def lookup(P: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """P[rows[k], cols[k]] for a canonical CSR (0 where not stored)."""
    n = np.int64(P.shape[1])
    keys = np.repeat(np.arange(P.shape[0], dtype=np.int64), np.diff(P.indptr)) * n + P.indices
    if keys.size == 0:
        return np.zeros(rows.size)
    q = rows.astype(np.int64) * n + cols
    at = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return np.where(keys[at] == q, P.data[at], 0.0).astype(np.float64)


def extend(old: IdMap, new: IdMap) -> tuple[IdMap, np.ndarray]:
    """The old vocabulary with new's unseen ids appended, and each of new's ids' code in it."""
    codes = old.codes(new.to_numpy(), missing=-1).astype(np.int64)
    unseen = codes < 0
    if not unseen.any():
        return old, codes
    merged = IdMap(np.concatenate([old.to_numpy(), new.to_numpy()[unseen]]))
    codes[unseen] = len(old) + np.arange(int(unseen.sum()))
    return merged, codes


def grow(idmap: IdMap, size: int) -> IdMap:
    """An identity-like vocabulary extended to ``size`` codes (ids continue after the largest)."""
    if size == len(idmap):
        return idmap
    ids = idmap.to_numpy()
    if ids.dtype.kind == "O":
        raise ValueError("a sparse matrix cannot add users/items to a model with string ids; "
                         "pass Interactions instead")
    start = int(ids.max()) + 1 if ids.size else 0
    return IdMap(np.concatenate([ids, np.arange(start, start + size - len(idmap), dtype=ids.dtype)]))
