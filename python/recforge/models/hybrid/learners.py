r"""Blend-weight learners of LearnedHybrid: features X (one row per (user, candidate item), one
column per component's normalised score), labels y (1 = the user chose the item in the
validation part), groups g (the user of each row).

- ``ridge``: :math:`\min_{w,b} \|y - Xw - b\|^2 + \alpha \|w\|^2` (scikit-learn ``Ridge``);
- ``logistic``: :math:`\min_{w,b} \sum_r \log(1 + e^{-(2y_r - 1)(x_r w + b)}) + \frac{1}{2C}\|w\|^2`
  with :math:`C = 1/\alpha` (scikit-learn ``LogisticRegression``);
- ``lambdarank``: pairwise, within each user, over (chosen p, not chosen q) pairs,
  :math:`\min_w \frac{1}{|G|}\sum_g \sum_{(p,q)} |\Delta \mathrm{NDCG}_{pq}|\,\log(1 + e^{-(x_p - x_q) w})
  + \frac{\alpha}{2}\|w\|^2` by full-batch gradient descent (on a seeded sample of at most
  ``MAX_PAIRS`` pairs), where :math:`|\Delta\mathrm{NDCG}_{pq}|
  = |1/\log_2(1 + r_p) - 1/\log_2(1 + r_q)| / \mathrm{IDCG}_g` at the ranks r of the current
  weights, refreshed every ``RERANK_EVERY`` epochs (Burges 2010).

Each returns ``(weights, intercept)``; lambdarank has no intercept (0).
"""
from __future__ import annotations

import numpy as np

from recforge.models.content.encoders.base import require_text

LEARNERS = ("ridge", "logistic", "lambdarank")
#: lambdarank trains on at most this many (chosen, not chosen) pairs (a seeded uniform sample)
MAX_PAIRS = 200_000
#: lambdarank recomputes the ranks (and so the |dNDCG| pair weights) every this many epochs
RERANK_EVERY = 20


def learn_weights(X: np.ndarray, y: np.ndarray, groups: np.ndarray, learner: str, alpha: float = 1.0,
                  epochs: int = 100, lr: float = 1.0) -> tuple[np.ndarray, float]:
    if learner not in LEARNERS:
        raise ValueError(f"learner must be one of {LEARNERS}, got {learner!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if learner == "ridge":
        linear = require_text("sklearn.linear_model", "LearnedHybrid(learner='ridge')")
        fit = linear.Ridge(alpha=float(alpha)).fit(X, y)
        return np.asarray(fit.coef_, np.float64).reshape(-1), float(fit.intercept_)
    if learner == "logistic":
        if np.unique(y).size < 2:
            raise ValueError("the validation candidates hold only one class; no weights can be learned")
        linear = require_text("sklearn.linear_model", "LearnedHybrid(learner='logistic')")
        fit = linear.LogisticRegression(C=1.0 / max(float(alpha), 1e-12), max_iter=1000).fit(X, y)
        return np.asarray(fit.coef_, np.float64).reshape(-1), float(fit.intercept_[0])
    return _lambdarank(X, y, np.asarray(groups), float(alpha), int(epochs), float(lr)), 0.0


def _lambdarank(X: np.ndarray, y: np.ndarray, groups: np.ndarray, alpha: float, epochs: int, lr: float,
                max_pairs: int = MAX_PAIRS) -> np.ndarray:
    """Full-batch gradient descent over every (chosen, not chosen) pair of each group, vectorised
    over the flat pair list; ranks are recomputed from the current scores at every epoch."""
    order = np.argsort(groups, kind="stable")
    X, y, groups = X[order], y[order] > 0, groups[order]
    _, g, counts = np.unique(groups, return_inverse=True, return_counts=True)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    n_pos = np.bincount(g, weights=y, minlength=counts.size).astype(np.int64)
    useful = (n_pos > 0) & (n_pos < counts)
    w = np.full(X.shape[1], 1.0 / max(X.shape[1], 1))
    if not useful.any():
        return w
    P, Q = [], []
    for k in np.flatnonzero(useful):                     # pair lists, built once
        rows = np.arange(starts[k], starts[k] + counts[k])
        pos, neg = rows[y[rows]], rows[~y[rows]]
        P.append(np.repeat(pos, neg.size))
        Q.append(np.tile(neg, pos.size))
    P, Q = np.concatenate(P), np.concatenate(Q)
    if P.size > max_pairs:                               # a seeded uniform sample of the pairs
        keep = np.sort(np.random.default_rng(0).choice(P.size, max_pairs, replace=False))
        P, Q = P[keep], Q[keep]
    idcg = np.array([np.sum(1.0 / np.log2(np.arange(2, c + 2))) for c in n_pos])[g[P]]
    n_groups = int(useful.sum())
    rank = np.empty(y.size)
    D = X[P] - X[Q]                                      # einsum below: tiny products, no BLAS threads
    for epoch in range(epochs):
        if epoch % RERANK_EVERY == 0:                    # |dNDCG| from the current ranks
            s = np.einsum("ij,j->i", X, w)
            by_score = np.lexsort((-s, g))               # within each group, best first
            rank[by_score] = np.arange(y.size) - starts[g[by_score]] + 1
            disc = 1.0 / np.log2(1.0 + rank)
            delta = np.abs(disc[P] - disc[Q]) / idcg
        diff = np.einsum("ij,j->i", D, w)
        rho = delta / (1.0 + np.exp(np.clip(diff, -50, 50)))   # |dNDCG| * sigmoid(-(s_p - s_q))
        w -= lr * (alpha * w - np.einsum("i,ij->j", rho, D) / n_groups)
    return w
