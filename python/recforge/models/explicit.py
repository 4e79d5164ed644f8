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
    identity = sp.identity(n_x, dtype=np.float64, format="csr")
    for a, b in zip(bounds[:-1], bounds[1:]):
        q = order[a:b]
        _accumulate(q, x, y, Xt, S, identity, k, stats, num, den, actual_k, num_threads)
    return _estimate(x, y, X, Xt, num, den, actual_k, min_k, stats)


def _accumulate(q, x, y, Xt, S, identity, k, stats, num, den, actual_k, num_threads) -> None:
    """Neighbour sums of the pairs q: sum of s and of s * (r - centre) over the k best raters."""
    n_x = S.shape[0]
    ux, pos = np.unique(x[q], return_inverse=True)
    D = S[ux].toarray().astype(np.float64)
    qy = y[q]
    cnt = Xt.indptr[qy + 1] - Xt.indptr[qy]
    owner = np.repeat(np.arange(q.size), cnt)
    at = np.arange(owner.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(Xt.indptr[qy], cnt)
    x2 = Xt.indices[at].astype(np.int64)
    r = Xt.data[at].astype(np.float64)
    s = D[pos[owner], x2]
    s[x2 == x[q][owner]] = 1.0                 # Surprise's sim[x, x] = 1 (pairs rated in training)
    keep = s > 0
    owner, x2, r, s = owner[keep], x2[keep], r[keep], s[keep]
    indptr = np.zeros(q.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=q.size), out=indptr[1:])
    candidates = sp.csr_matrix((s, x2, indptr), shape=(q.size, n_x))
    # the row-wise top-k of `candidates` (ties by smaller code) is its product with the identity;
    # from it, each row's admission bar: the k-th best similarity and, among equal ones, the
    # largest code admitted
    best = similarity_topk(candidates, k, identity, metric="dot", num_threads=num_threads)
    full = np.diff(best.indptr) >= k
    last = best.indptr[1:] - 1
    bar_s = np.where(full, best.data[np.maximum(last, 0)] if best.nnz else 0.0, -np.inf)
    bar_x = np.where(full, best.indices[np.maximum(last, 0)] if best.nnz else 0, n_x)
    chosen = (s > bar_s[owner]) | ((s == bar_s[owner]) & (x2 <= bar_x[owner]))
    row_best, r_best, s_best, nb = owner[chosen], r[chosen], s[chosen], x2[chosen]
    if stats.centering == "none":
        dev = r_best
    elif stats.centering == "mean":
        dev = r_best - stats.x_means[nb]
    else:
        dev = r_best - (stats.global_mean + stats.x_bias[nb] + stats.y_bias[qy[row_best]])
    num[q] = np.bincount(row_best, weights=s_best * dev, minlength=q.size)
    den[q] = np.bincount(row_best, weights=s_best, minlength=q.size)
    actual_k[q] = np.bincount(row_best, minlength=q.size)


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
