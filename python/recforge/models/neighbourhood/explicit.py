r"""Rating prediction of the classic neighbourhood models, exactly as Surprise's ``knns.py``.

Written for "x-major" data: x is the user and y the item for user-based models, the other way
round for item-based ones. For a pair (x, y) the neighbourhood :math:`N^k_y(x)` is the k
x' most similar to x **among those who rated y** (chosen per prediction, not from a fixed
list), of which only those with similarity > 0 are used; ``actual_k`` is their number (ties in
similarity: smaller code first; Surprise keeps its rating order). With
:math:`s = \mathrm{sim}(x, x')` and sums over :math:`x' \in N^k_y(x)`:

- ``centering="none"`` (KNNBasic): :math:`\hat r = \sum s\, r_{x'y} / \sum s`
- ``"mean"`` (KNNWithMeans): :math:`\hat r = \mu_x + \sum s (r_{x'y} - \mu_{x'}) / \sum s`
- ``"baseline"`` (KNNBaseline): :math:`\hat r = b_{xy} + \sum s (r_{x'y} - b_{x'y}) / \sum s`,
  :math:`b_{xy} = \mu + b_x + b_y` from :func:`recforge.models.baselines_als.baseline_als`.

Fallbacks, as Surprise: with fewer than ``min_k`` neighbours the neighbour term is dropped
(KNNBasic then predicts the global mean, the others :math:`\mu_x` / :math:`b_{xy}`); when x or y
has no training rating, KNNBasic and KNNWithMeans predict the global mean and KNNBaseline
:math:`b_{xy}` (biases of unknown users/items are 0). Like Surprise, a pair whose rating is in
the training data counts x itself as a neighbour with similarity 1. Predictions are clipped to
the rating range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recforge.kernels import similarity_topk

MAX_EXPANDED = 2_000_000   # (pair, rater) entries per block
MAX_DENSE_SIM = 4_000_000  # similarity values gathered densely per block


@dataclass
class RatingStats:
    """What the three forms need beyond the ratings and similarities (x/y as in the module)."""

    centering: str
    global_mean: float
    x_means: np.ndarray | None
    x_bias: np.ndarray | None
    y_bias: np.ndarray | None
    low: float
    high: float


def predict_pairs(x: np.ndarray, y: np.ndarray, X: sp.csr_matrix, Xt: sp.csr_matrix, S: sp.csr_matrix,
                  k: int, min_k: int, stats: RatingStats, num_threads: int = 0) -> np.ndarray:
    """Predicted ratings of the pairs (x[q], y[q]); X is x-major (n_x x n_y), Xt its transpose,
    S the n_x x n_x similarities (every non-zero pair)."""
    P = x.size
    n_x = X.shape[0]
    num = np.zeros(P)
    den = np.zeros(P)
    actual_k = np.zeros(P, dtype=np.int64)
    raters = np.diff(Xt.indptr)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new_x = np.r_[True, xs[1:] != xs[:-1]] if P else np.zeros(0, bool)
    block_of = np.maximum(np.cumsum(raters[y[order]]) // MAX_EXPANDED,
                          np.cumsum(new_x) // max(1, MAX_DENSE_SIM // max(n_x, 1)))
    bounds = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1], True]) if P else np.array([0])
    identity = sp.identity(n_x, dtype=S.dtype, format="csr")
    for a, b in zip(bounds[:-1], bounds[1:]):
        q = order[a:b]
        _accumulate(q, x, y, Xt, S, identity, k, stats, num, den, actual_k, num_threads)
    return _estimate(x, y, X, Xt, num, den, actual_k, min_k, stats)


def _accumulate(q, x, y, Xt, S, identity, k, stats, num, den, actual_k, num_threads) -> None:
    """Neighbour sums of the pairs q: sum of s and of s * (r - centre) over the k best raters."""
    n_x = S.shape[0]
    ux, pos = np.unique(x[q], return_inverse=True)
    D = S[ux].toarray()
    qx, qy = x[q], y[q]
    cnt = Xt.indptr[qy + 1] - Xt.indptr[qy]
    indptr = np.zeros(q.size + 1, dtype=np.int64)
    np.cumsum(cnt, out=indptr[1:])
    owner = np.repeat(np.arange(q.size, dtype=np.int32), cnt)
    x2 = Xt.indices[_concatenated_ranges(Xt.indptr[qy], cnt)]
    s = D[pos[owner], x2]
    # Surprise's sim[x, x] = 1: x is among y's raters when the pair was rated in training
    own = _position_in_rows(Xt, qy, qx)
    s[indptr[:-1][own >= 0] + own[own >= 0]] = 1.0
    # row-wise top-k of the candidates (ties: smaller code) = their product with the identity;
    # it drops zero entries and keeps negative ones (among the k best when few are positive)
    candidates = sp.csr_matrix((s, x2, indptr), shape=(q.size, n_x))
    best = similarity_topk(candidates, k, identity, metric="dot", num_threads=num_threads).tocoo()
    positive = best.data > 0
    row_best, nb = best.row[positive], best.col[positive].astype(np.int64)
    s_best = best.data[positive].astype(np.float64)
    uy, ypos = np.unique(qy, return_inverse=True)
    if uy.size * n_x <= MAX_DENSE_SIM:      # the block's ratings densely: one gather
        r_best = Xt[uy].toarray()[ypos[row_best], nb].astype(np.float64)
    else:
        at_best = Xt.indptr[qy[row_best]] + _position_in_rows(Xt, qy[row_best], nb)
        r_best = Xt.data[at_best].astype(np.float64)
    if stats.centering == "none":
        dev = r_best
    elif stats.centering == "mean":
        dev = r_best - stats.x_means[nb]
    else:
        dev = r_best - (stats.global_mean + stats.x_bias[nb] + stats.y_bias[qy[row_best]])
    num[q] = np.bincount(row_best, weights=s_best * dev, minlength=q.size)
    den[q] = np.bincount(row_best, weights=s_best, minlength=q.size)
    actual_k[q] = np.bincount(row_best, minlength=q.size)


def _concatenated_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """starts[0] .. starts[0]+counts[0]-1, starts[1] .. : one cumulative sum of unit steps."""
    keep = counts > 0
    starts, counts = starts[keep].astype(np.int64), counts[keep].astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    step = np.ones(total, dtype=np.int64)
    step[0] = starts[0]
    step[np.cumsum(counts)[:-1]] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(step)


def _position_in_rows(M: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Offset of column cols[j] within row rows[j] of the canonical CSR M, or -1 when not stored."""
    n = np.int64(M.shape[1])
    keys = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr)) * n + M.indices
    if keys.size == 0:
        return np.full(rows.size, -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, rows * n + cols), keys.size - 1)
    return np.where(keys[at] == rows * n + cols, at - M.indptr[rows], -1)


def _estimate(x, y, X, Xt, num, den, actual_k, min_k, stats: RatingStats) -> np.ndarray:
    known = (np.diff(X.indptr)[x] > 0) & (np.diff(Xt.indptr)[y] > 0)
    enough = known & (actual_k >= min_k) & (den > 0)
    term = np.divide(num, den, out=np.zeros(num.size), where=enough)
    mu = stats.global_mean
    if stats.centering == "none":
        est = np.where(enough, term, mu)
    elif stats.centering == "mean":
        est = np.where(known, stats.x_means[x] + term, mu)
    else:
        est = mu + stats.x_bias[x] + stats.y_bias[y] + term
    return np.clip(est, stats.low, stats.high)
