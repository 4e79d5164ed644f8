"""Neighbour lists of a k-NN model: computed in row blocks (with a progress bar) and updated in
place for the rows whose data changed (``partial_fit``), both on ``similarity_topk``."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recforge.kernels import similarity_topk
from recforge.models._progress import progress_bar

#: rows per similarity_topk call when a progress bar is shown
BLOCK_ROWS = 4096
#: metrics whose value for a pair depends only on the two rows (so a changed row changes only
#: its own pairs); the others use corpus statistics (column means, idf, mean row length)
PAIRWISE_METRICS = ("dot", "cosine", "jaccard", "pearson", "msd")


def self_pattern(rows: np.ndarray, n: int) -> sp.csr_matrix:
    """Row r holds column rows[r]: excludes each row's own index."""
    m = rows.size
    return sp.csr_matrix((np.ones(m, np.float32), rows.astype(np.int64), np.arange(m + 1)), shape=(m, n))


def all_neighbours(X: sp.csr_matrix, k: int | None, sim: dict, progress: bool, desc: str) -> sp.csr_matrix:
    """For each row of X, its k most similar other rows (k=None: every non-zero one), best first."""
    n = X.shape[0]
    kk = max(n, 1) if k is None else k
    if n <= BLOCK_ROWS or sim["metric"] not in PAIRWISE_METRICS:
        return similarity_topk(X, kk, **sim)
    blocks = []
    with progress_bar(n, desc, progress) as bar:
        for start in range(0, n, BLOCK_ROWS):
            rows = np.arange(start, min(n, start + BLOCK_ROWS))
            blocks.append(similarity_topk(X[rows], kk, X, exclude=self_pattern(rows, n), **sim))
            bar.update(rows.size)
    return sp.vstack(blocks, format="csr")


def update_neighbours(S: sp.csr_matrix, X: sp.csr_matrix, touched: np.ndarray, k: int | None,
                      sim: dict) -> sp.csr_matrix:
    """The neighbour lists of X given those of an earlier X (``S``) that differed only in the
    rows ``touched`` (new rows are touched too), without recomputing all pairs.

    For a pairwise metric only pairs with a touched row change. Rows that are touched, or whose
    old list was full (k entries: what lay beyond it is unknown) and held a touched row, are
    recomputed; every other row keeps its old entries towards untouched rows and gets fresh
    similarities towards the touched rows, then its k best (ties by smaller index).
    """
    n = X.shape[0]
    if S.shape != (n, n):
        S = sp.csr_matrix((S.data, S.indices, np.r_[S.indptr, np.full(n - S.shape[0], S.indptr[-1])]),
                          shape=(n, n))
    touched = np.unique(np.asarray(touched, dtype=np.int64))
    if touched.size == 0:
        return S
    if sim["metric"] not in PAIRWISE_METRICS:
        return all_neighbours(X, k, sim, False, "")
    is_touched = np.zeros(n, dtype=bool)
    is_touched[touched] = True
    lengths = np.diff(S.indptr)
    owner = np.repeat(np.arange(n), lengths)
    holds_touched = np.bincount(owner[is_touched[S.indices]], minlength=n) > 0
    full = lengths >= (k if k is not None else n)
    redo = np.flatnonzero(is_touched | (full & holds_touched))
    rest = np.flatnonzero(~(is_touched | (full & holds_touched)))
    kk = max(n, 1) if k is None else k

    fresh = similarity_topk(X[redo], kk, X, exclude=self_pattern(redo, n), **sim).tocoo()
    towards = similarity_topk(X[rest], touched.size, X[touched], **sim).tocoo()
    keep_old = ~is_touched[S.indices] & ~np.isin(owner, redo, assume_unique=False)
    rows = np.concatenate([redo[fresh.row], rest[towards.row], owner[keep_old]])
    cols = np.concatenate([fresh.col, touched[towards.col], S.indices[keep_old]])
    vals = np.concatenate([fresh.data, towards.data, S.data[keep_old]]).astype(S.dtype if S.nnz else fresh.data.dtype)
    order = np.lexsort((cols, -vals.astype(np.float64), rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=n)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < kk
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sp.csr_matrix((vals, cols, indptr), shape=(n, n))
