r"""Blend-weight learners of LearnedHybrid: features X (one row per (user, candidate item), one
column per component's normalised score), labels y (1 = the user chose the item in the
validation part), groups g (the user of each row).

- ``ridge``: :math:`\min_{w,b} \|y - Xw - b\|^2 + \alpha \|w\|^2` (scikit-learn ``Ridge``);
- ``logistic``: :math:`\min_{w,b} \sum_r \log(1 + e^{-(2y_r - 1)(x_r w + b)}) + \frac{1}{2C}\|w\|^2`
  with :math:`C = 1/\alpha` (scikit-learn ``LogisticRegression``);
- ``lambdarank``: pairwise, within each user, over (chosen p, not chosen q) pairs,
  :math:`\min_w \frac{1}{|G|}\sum_g \sum_{(p,q)} |\Delta \mathrm{NDCG}_{pq}|\,\log(1 + e^{-(x_p - x_q) w})
  + \frac{\alpha}{2}\|w\|^2` by full-batch gradient descent, where :math:`|\Delta\mathrm{NDCG}_{pq}|
  = |1/\log_2(1 + r_p) - 1/\log_2(1 + r_q)| / \mathrm{IDCG}_g` at the current ranks r (Burges 2010).

Each returns ``(weights, intercept)``; lambdarank has no intercept (0).
"""
from __future__ import annotations

import numpy as np

from recforge.models.content.encoders.base import require_text

LEARNERS = ("ridge", "logistic", "lambdarank")


def learn_weights(X: np.ndarray, y: np.ndarray, groups: np.ndarray, learner: str, alpha: float = 1.0,
                  epochs: int = 200, lr: float = 0.5) -> tuple[np.ndarray, float]:
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


def _lambdarank(X: np.ndarray, y: np.ndarray, groups: np.ndarray, alpha: float, epochs: int, lr: float) -> np.ndarray:
    order = np.argsort(groups, kind="stable")
    X, y, groups = X[order], y[order], groups[order]
    bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
    spans = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if 0 < y[a:b].sum() < b - a]
    w = np.full(X.shape[1], 1.0 / max(X.shape[1], 1))
    if not spans:
        return w
    for _ in range(epochs):
        grad = alpha * w
        for a, b in spans:
            Xg, yg = X[a:b], y[a:b]
            s = Xg @ w
            ranks = np.empty(b - a)
            ranks[np.argsort(-s, kind="stable")] = np.arange(1, b - a + 1)
            pos, neg = np.flatnonzero(yg > 0), np.flatnonzero(yg <= 0)
            idcg = np.sum(1.0 / np.log2(np.arange(2, pos.size + 2)))
            disc = 1.0 / np.log2(1.0 + ranks)
            delta = np.abs(disc[pos][:, None] - disc[neg][None, :]) / idcg
            diff = s[pos][:, None] - s[neg][None, :]
            rho = delta / (1.0 + np.exp(np.clip(diff, -50, 50)))        # |dNDCG| * sigmoid(-diff)
            grad -= (rho.sum(axis=1) @ Xg[pos] - rho.sum(axis=0) @ Xg[neg]) / len(spans)
        w -= lr * grad
    return w
