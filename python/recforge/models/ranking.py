"""Top-n selection with the project-wide order: higher score first, ties by smaller item code.

Every model's ``recommend`` ends here, so that all of them agree on ties, on padding (item -1
with score -inf when fewer than n candidates remain) and on items without a score (score 0).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PAD_ITEM = -1
PAD_SCORE = -np.inf


def topn_dense(scores: np.ndarray, n: int, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The n best columns of each row of a dense m x n_items block, never an excluded one.

    Returns ``(items int64, scores float32)`` of shape (m, n), best first, ties by smaller code,
    padded with -1 / -inf where a row has fewer than n candidates. Memory: O(m x n_items), so
    callers pass chunks of rows.
    """
    S = np.array(scores, dtype=np.float64, copy=True)
    m, n_items = S.shape
    if exclude is not None and exclude.nnz:
        rows = np.repeat(np.arange(m), np.diff(exclude.indptr))
        S[rows, exclude.indices] = -np.inf
    width = min(n, n_items)
    if width == 0 or m == 0:
        return _pad(np.empty((m, 0), np.int64), np.empty((m, 0)), n)
    if width < n_items:
        kth = -np.partition(-S, width - 1, axis=1)[:, width - 1]
        above = S > kth[:, None]
        tied = S == kth[:, None]
        need = width - above.sum(axis=1)
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
        idx = np.nonzero(chosen)[1].reshape(m, width)  # ascending codes within each row
    else:
        idx = np.broadcast_to(np.arange(n_items), (m, n_items))
    vals = np.take_along_axis(S, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # stable: equal scores keep ascending codes
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    idx[np.isneginf(vals)] = PAD_ITEM
    return _pad(idx, vals, n)


def _pad(idx: np.ndarray, vals: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    m, width = idx.shape
    items = np.full((m, n), PAD_ITEM, dtype=np.int64)
    out = np.full((m, n), PAD_SCORE, dtype=np.float32)
    items[:, :width] = idx
    out[:, :width] = vals
    out[items < 0] = PAD_SCORE
    return items, out


def first_free_codes(blocked: sp.csr_matrix, counts: np.ndarray) -> sp.csr_matrix:
    """Per row r, the ``counts[r]`` smallest column codes not stored in row r of ``blocked``
    (fewer when the row has fewer free columns), as a pattern CSR.

    The j-th blocked code s_j (ascending, 0-based) has s_j - j free codes before it, so the
    p-th free code is p + #{j : s_j - j <= p}: one binary search per wanted code.
    """
    m, n_items = blocked.shape
    free = n_items - np.diff(blocked.indptr)
    take = np.minimum(np.asarray(counts, dtype=np.int64), free)
    rows = np.repeat(np.arange(m, dtype=np.int64), take)
    starts = np.cumsum(take) - take
    positions = np.arange(rows.size, dtype=np.int64) - np.repeat(starts, take)
    lengths = np.diff(blocked.indptr)
    shifted = blocked.indices.astype(np.int64) - (np.arange(blocked.nnz) - np.repeat(blocked.indptr[:-1], lengths))
    offset = np.int64(n_items + 1)
    keys = np.repeat(np.arange(m, dtype=np.int64), lengths) * offset + shifted
    before = np.searchsorted(keys, rows * offset + positions, side="right") - blocked.indptr[:-1][rows]
    codes = positions + before
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(take, out=indptr[1:])
    return sp.csr_matrix((np.ones(codes.size, dtype=np.float32), codes, indptr), shape=(m, n_items))


def complete_sparse_topn(found: sp.csr_matrix, n: int, exclude: sp.csr_matrix | None,
                         dense_rows=None) -> tuple[np.ndarray, np.ndarray]:
    """Turn a kernel's top-n of non-zero scores into exactly n items per row.

    ``found`` (m x n_items) holds, per row, the <= n best items with a non-zero score, best
    first (ties by smaller code), never an excluded one. Items without a score count as score 0:
    they come after the positive and before the negative scores, by smaller code. When a row
    returned n items of which some are negative, items with score 0 may outrank them but the
    full set of non-zero items is unknown; those rows are re-ranked exactly by
    ``dense_rows(row_positions) -> m' x n_items scores`` (a small block).
    """
    m, n_items = found.shape
    lengths = np.diff(found.indptr)
    if found.nnz == m * n and (lengths == n).all() and (found.data[:found.nnz] > 0).all():
        # every row holds n positive scores: the lists are complete as found (the usual case)
        return (found.indices[:found.nnz].astype(np.int64).reshape(m, n),
                found.data[:found.nnz].astype(np.float32).reshape(m, n))
    items = np.full((m, n), PAD_ITEM, dtype=np.int64)
    scores = np.full((m, n), PAD_SCORE, dtype=np.float32)
    rows = np.repeat(np.arange(m), lengths)
    place = np.arange(found.nnz) - found.indptr[:-1][rows]
    positive = found.data > 0
    n_pos = np.bincount(rows[positive], minlength=m)
    unknown = (lengths >= n) & (n_pos < n)           # negatives fill the list: zeros may be missing
    needs_zeros = (lengths < n) & ~unknown
    # positives keep their place; negatives are shifted right by the zero-score items inserted
    if needs_zeros.any():
        zero_blocked = _pattern(found) if exclude is None else (_pattern(found) + _pattern(exclude)).tocsr()
        zero_blocked.sort_indices()       # a copy: `found` keeps its best-first order
        zeros = first_free_codes(zero_blocked, np.where(needs_zeros, n - n_pos, 0))
    else:
        zeros = sp.csr_matrix((m, n_items), dtype=np.float32)
    n_zero = np.diff(zeros.indptr)
    shift = np.where(positive, 0, n_zero[rows])
    slot = place + shift
    keep = (slot < n) & ~unknown[rows]
    items[rows[keep], slot[keep]] = found.indices[keep]
    scores[rows[keep], slot[keep]] = found.data[keep]
    zrows = np.repeat(np.arange(m), n_zero)
    zslot = n_pos[zrows] + (np.arange(zeros.nnz) - zeros.indptr[:-1][zrows])
    zkeep = zslot < n
    items[zrows[zkeep], zslot[zkeep]] = zeros.indices[zkeep]
    scores[zrows[zkeep], zslot[zkeep]] = 0.0
    redo = np.flatnonzero(unknown)
    if redo.size:
        if dense_rows is None:
            raise RuntimeError("negative scores need an exact re-ranking but no dense scorer was given")
        sub_exclude = None if exclude is None else exclude[redo]
        items[redo], scores[redo] = topn_dense(dense_rows(redo), n, sub_exclude)
    return items, scores


def _pattern(X: sp.spmatrix) -> sp.csr_matrix:
    X = X.tocsr()
    return sp.csr_matrix((np.ones(X.nnz, dtype=np.float32), X.indices.copy(), X.indptr.copy()), shape=X.shape)
