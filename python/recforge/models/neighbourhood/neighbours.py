"""Neighbour lists of a k-NN model: computed in row blocks (with a progress bar) and updated in
place for the rows whose data changed (``partial_fit``), both on ``similarity_topk``."""
from __future__ import annotations

from functools import partial

import numpy as np
import scipy.sparse as sp

from recforge.kernels import similarity_topk
from recforge._progress import progress_bar as _progress_bar

# Long fits only: the bar appears after half a second and is cleared when done.
progress_bar = partial(_progress_bar, delay=0.5, leave=False)

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
    """For each row of X, its k most similar other rows (k=None: every non-zero one), best first.

    Always computed row by row against Y = X (never the kernel's symmetric half product, which
    rounds a pair's value once for both rows): every similarity is then the same bit for bit
    however the rows are grouped, so block-wise fits and ``update_neighbours`` agree exactly
    with a fit in one call, ties included. Pairwise metrics go in blocks of BLOCK_ROWS rows
    behind a progress bar; the others need the whole matrix in one call (X's column means or
    document frequencies come from X and Y together).
    """
    n = X.shape[0]
    kk = max(n, 1) if k is None else k
    if n <= BLOCK_ROWS or sim["metric"] not in PAIRWISE_METRICS:
        return similarity_topk(X, kk, X, exclude=self_pattern(np.arange(n), n), **sim)
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

    For a pairwise metric only pairs with a touched row change. Touched rows are recomputed.
    Every other row gets fresh similarities towards the touched rows (one small product) and
    keeps its old entries towards untouched rows; its new list is the k best of both (ties by
    smaller index). That is exact unless the old list was full (k entries: what lay beyond it
    is unknown) and fewer than k candidates still rank at or above its last entry: such rows
    are recomputed too. Relies on the lists being stored best first, as every fit leaves them.
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
    kk = max(n, 1) if k is None else k
    is_touched = np.zeros(n, dtype=bool)
    is_touched[touched] = True
    lengths = np.diff(S.indptr)
    owner = np.repeat(np.arange(n), lengths)
    # only rows sharing a column with a touched row can have a similarity towards one
    by_column = X[touched].T.tocsr()
    shared = np.flatnonzero(np.diff(by_column.indptr))
    near = np.zeros(n, dtype=bool)
    near[X.T.tocsr()[shared].indices] = True
    others = np.flatnonzero(near & ~is_touched)
    towards = similarity_topk(X[others], touched.size, X[touched], **sim).tocoo()
    t_rows, t_cols, t_vals = others[towards.row], touched[towards.col], towards.data
    # A full old list (k entries) hides what lies beyond its last entry (its "bar"); the merge
    # is exact when at least k candidates still rank at or above that bar: the kept untouched
    # entries (all did) and the touched ones whose fresh value does.
    full = lengths >= kk
    last = np.maximum(S.indptr[1:] - 1, 0)
    bar_value = np.where(full, S.data[last] if S.nnz else 0, -np.inf).astype(np.float64)
    bar_index = np.where(full, S.indices[last] if S.nnz else 0, n)
    kept = np.bincount(owner[~is_touched[S.indices]], minlength=n)
    above = (t_vals > bar_value[t_rows]) | ((t_vals == bar_value[t_rows]) & (t_cols <= bar_index[t_rows]))
    rising = np.bincount(t_rows[above], minlength=n)
    recompute = is_touched | (full & (kept + rising < kk))
    redo = np.flatnonzero(recompute)

    fresh = similarity_topk(X[redo], kk, X, exclude=self_pattern(redo, n), **sim)
    # rows near a touched one: the k best of their kept old entries and their fresh ones towards
    # touched rows, selected by the kernel (a row-wise top-k is the product with the identity);
    # the lists of all other rows stay as they are
    merge = near & ~recompute
    keep_towards = merge[t_rows]
    keep_old = ~is_touched[S.indices] & merge[owner]
    rows = np.concatenate([t_rows[keep_towards], owner[keep_old]])
    cols = np.concatenate([t_cols[keep_towards], S.indices[keep_old]])
    vals = np.concatenate([t_vals[keep_towards], S.data[keep_old]]).astype(fresh.dtype)
    merged_rows = np.flatnonzero(merge)
    slot = np.full(n, -1, dtype=np.int64)
    slot[merged_rows] = np.arange(merged_rows.size)
    candidates = sp.csr_matrix((vals, (slot[rows], cols)), shape=(merged_rows.size, n))
    merged = similarity_topk(candidates, kk, sp.identity(n, dtype=fresh.dtype, format="csr"), metric="dot",
                             num_threads=sim["num_threads"])
    pick = np.arange(n)
    pick[merged_rows] = n + np.arange(merged_rows.size)
    pick[redo] = n + merged_rows.size + np.arange(redo.size)
    return sp.vstack([S.astype(fresh.dtype), merged, fresh], format="csr")[pick]
