r"""Calibrated recommendations (Steck, RecSys 2018), vectorised over users.

With :math:`p(g \mid u)` the category distribution of the user's history and
:math:`q(g \mid L) = \frac{1}{|L|} \sum_{i \in L} p(g \mid i)` that of a list L, the list is built
greedily, each step adding the candidate that maximises

.. math:: (1 - \lambda) \sum_{i \in L} \mathrm{rel}(u, i) - \lambda\, \mathrm{KL}(p \,\|\, \tilde q),
   \qquad \mathrm{KL}(p \,\|\, \tilde q) = \sum_g p(g \mid u) \log \frac{p(g \mid u)}{\tilde q(g \mid L)},

with :math:`\tilde q = (1 - \alpha) q + \alpha p` (:math:`\alpha = 0.01`) so the divergence stays
finite, and rel the model's score min-max scaled over the user's candidates.
:math:`p(g \mid i)` spreads an item uniformly over its categories.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.rerank.candidates import candidate_lists, greedy, relevance

ALPHA = 0.01


def category_distribution(rows: Any, item_categories: Any) -> np.ndarray:
    r""":math:`p(g \mid u)`: for each row of a users x items matrix (histories, values as weights),
    the weighted mean of its items' category distributions (``item_categories``: n_items x g,
    each item's row normalised to sum 1; items without a category are ignored)."""
    C = _item_distribution(item_categories)
    H = sp.csr_matrix(rows, dtype=np.float64)
    P = np.asarray(H @ C)
    total = P.sum(axis=1, keepdims=True)
    return np.divide(P, total, out=np.zeros_like(P), where=total > 0)


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    r"""Row-wise :math:`\mathrm{KL}(p \,\|\, (1 - \alpha) q + \alpha p)` (0 log 0 = 0)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    mixed = (1.0 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / mixed), 0.0)
    return terms.sum(axis=-1)


def calibrate(items: Any, scores: Any, item_categories: Any, user_profiles: Any, *, lambda_: float = 0.5,
              n: int = 10, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each user's candidates towards its category profile (module docstring).

    ``item_categories``: n_items x g (dense or sparse; multi-hot or weights); ``user_profiles``:
    m x g target distributions :math:`p(g|u)` (e.g. :func:`category_distribution` of the training
    histories). Returns (items, scores) of shape (m, n).
    """
    items, scores, valid, n = candidate_lists(items, scores, n)
    lam = float(lambda_)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda_ must lie in [0, 1], got {lambda_}")
    C = _item_distribution(item_categories)
    P = np.asarray(user_profiles, dtype=np.float64)
    if P.shape != (items.shape[0], C.shape[1]):
        raise ValueError(f"user_profiles must have shape ({items.shape[0]}, {C.shape[1]}) (users x categories), "
                         f"got {P.shape}")
    if items.size and items.max() >= C.shape[0]:
        raise ValueError(f"items holds codes beyond the {C.shape[0]} rows of item_categories")
    cand = np.asarray(C[np.where(valid, items, 0)])                    # (m, c, g)
    rel = relevance(scores, valid)
    m = items.shape[0]
    rows = np.arange(m)
    q_sum = np.zeros((m, C.shape[1]))
    rel_sum = np.zeros(m)

    def objective(step, chosen, last):
        nonlocal q_sum, rel_sum
        if step:
            picked = last >= 0
            q_sum[picked] += cand[rows[picked], last[picked]]
            rel_sum[picked] += rel[rows[picked], last[picked]]
        q_new = (q_sum[:, None, :] + cand) / (step + 1)                # the list's q if each were added
        kl = kl_divergence(P[:, None, :], q_new, alpha)
        return (1.0 - lam) * (rel_sum[:, None] + np.where(valid, rel, 0.0)) - lam * kl

    return greedy(objective, items, scores, valid, n)


def _item_distribution(item_categories: Any) -> np.ndarray:
    C = item_categories.toarray() if sp.issparse(item_categories) else np.asarray(item_categories)
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2:
        raise ValueError(f"item_categories must be 2-D (n_items x categories), got shape {C.shape}")
    if C.size and C.min() < 0:
        raise ValueError("item_categories must be non-negative")
    total = C.sum(axis=1, keepdims=True)
    return np.divide(C, total, out=np.zeros_like(C), where=total > 0)
