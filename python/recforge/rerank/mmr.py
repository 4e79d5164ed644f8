r"""Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998), vectorised over users.

Greedy: with :math:`S` the items chosen so far, the next item is

.. math:: \arg\max_{i \notin S}\ \lambda\, \mathrm{rel}(u, i) - (1 - \lambda) \max_{j \in S} \mathrm{sim}(i, j)

(the max term is 0 while :math:`S` is empty), where :math:`\mathrm{rel}` is the model's score
min-max scaled to [0, 1] over the user's candidates and :math:`\mathrm{sim}` the cosine of item
vectors (or a given item-item similarity). :math:`\lambda = 1` keeps the model's order;
smaller values trade relevance for intra-list diversity.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.rerank.candidates import candidate_lists, greedy, relevance


def mmr(items: Any, scores: Any, item_vectors: Any = None, *, similarity: Any = None, lambda_: float = 0.5,
        n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each user's candidates by MMR (module docstring); returns (items, scores) (m, n).

    ``item_vectors``: n_items x d array (cosine similarity), or ``similarity``: an n_items x
    n_items matrix (dense or scipy sparse; absent entries are 0). Exactly one of the two.
    """
    items, scores, valid, n = candidate_lists(items, scores, n)
    lam = float(lambda_)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda_ must lie in [0, 1], got {lambda_}")
    if (item_vectors is None) == (similarity is None):
        raise ValueError("pass exactly one of item_vectors= or similarity=")
    safe = np.where(valid, items, 0)
    pair_sim = _candidate_similarity(safe, item_vectors, similarity)       # (m, c, c)
    rel = relevance(scores, valid)
    closest = np.zeros(items.shape)
    rows = np.arange(items.shape[0])

    def objective(step, chosen, last):
        if step:
            picked = last >= 0
            closest[picked] = np.maximum(closest[picked], pair_sim[rows[picked], last[picked], :])
        return lam * rel - (1.0 - lam) * closest

    return greedy(objective, items, scores, valid, n)


def _candidate_similarity(items: np.ndarray, item_vectors: Any, similarity: Any) -> np.ndarray:
    """sim(items[u, a], items[u, b]) for every user u and candidate pair (a, b): (m, c, c)."""
    if item_vectors is not None:
        V = np.asarray(item_vectors, dtype=np.float64)
        if V.ndim != 2:
            raise ValueError(f"item_vectors must be 2-D (n_items x d), got shape {V.shape}")
        if items.size and items.max() >= V.shape[0]:
            raise ValueError(f"items holds codes beyond the {V.shape[0]} rows of item_vectors")
        norms = np.linalg.norm(V, axis=1, keepdims=True)
        U = np.divide(V, norms, out=np.zeros_like(V), where=norms > 0).astype(np.float32)[items]   # (m, c, d)
        # einsum, not a batched matmul: thousands of tiny products would each start BLAS threads
        return np.einsum("mad,mbd->mab", U, U).astype(np.float64)
    S = similarity
    n_items = S.shape[0]
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"similarity must be a square n_items x n_items matrix, got shape {S.shape}")
    if items.size and items.max() >= n_items:
        raise ValueError(f"items holds codes beyond the {n_items} rows of similarity")
    m, c = items.shape
    a = np.repeat(items, c, axis=1).reshape(-1)
    b = np.tile(items, (1, c)).reshape(-1)
    if sp.issparse(S):
        values = np.asarray(sp.csr_matrix(S)[a, b]).reshape(-1)
    else:
        values = np.asarray(S)[a, b]
    return values.astype(np.float64).reshape(m, c, c)
