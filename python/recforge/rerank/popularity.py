r"""Popularity debiasing: relevance traded against how popular an item is.

.. math:: \mathrm{score}'(u, i) = (1 - \beta)\, \mathrm{rel}(u, i) - \beta\, \pi(i),
   \qquad \pi(i) = \frac{\log(1 + c_i)}{\log(1 + \max_j c_j)}

with :math:`c_i` the item's interaction count in the training data and rel the model's score
min-max scaled over the user's candidates; the candidates are re-sorted by score' (ties: the
earlier candidate). :math:`\beta = 0` keeps the model's order, larger values promote the long tail.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge.rerank.candidates import candidate_lists, relevance


def debias_popularity(items: Any, scores: Any, popularity: Any, *, beta: float = 0.3,
                      n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each user's candidates by score' (module docstring); returns (items, scores) (m, n)
    with the model's original scores."""
    items, scores, valid, n = candidate_lists(items, scores, n)
    b = float(beta)
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    counts = np.asarray(popularity, dtype=np.float64).reshape(-1)
    if counts.size and counts.min() < 0:
        raise ValueError("popularity must hold non-negative counts")
    if items.size and items.max() >= counts.size:
        raise ValueError(f"items holds codes beyond the {counts.size} entries of popularity")
    top = np.log1p(counts.max()) if counts.size else 1.0
    pi = np.log1p(counts) / top if top > 0 else np.zeros_like(counts)
    value = (1.0 - b) * relevance(scores, valid) - b * pi[np.where(valid, items, 0)]
    value = np.where(valid, value, -np.inf)
    order = np.argsort(-value, axis=1, kind="stable")[:, :n]
    out_items = np.take_along_axis(items, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    bad = ~np.take_along_axis(valid, order, axis=1)
    out_items[bad], out_scores[bad] = -1, -np.inf
    if out_items.shape[1] < n:
        pad = n - out_items.shape[1]
        out_items = np.hstack([out_items, np.full((items.shape[0], pad), -1, np.int64)])
        out_scores = np.hstack([out_scores, np.full((items.shape[0], pad), -np.inf, np.float32)])
    return out_items, out_scores
