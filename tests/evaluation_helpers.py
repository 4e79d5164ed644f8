"""Shared by the evaluation tests: a tiny embedding model and loop-based metric references.

Everything here is written independently of recforge.evaluation (plain loops over users), so
the tests compare the vectorised code against straightforward implementations.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from recforge.models import EmbeddingRecommender


class EmbeddingModel(EmbeddingRecommender):
    """score(u, i) = U[u] . V[i] (plus seeded noise on U at fit): recforge's EmbeddingRecommender
    with given factors, recording every recommend and predict call for the evaluation tests."""

    def __init__(self, U, V, noise: float = 0.0, seed: int = 0):
        self.U, self.V, self.noise, self.seed = U, V, noise, seed
        self.calls: list[tuple[int, int]] = []  # (len(users), n) of every recommend call
        self.pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # every predict call

    def _fit(self, data):
        rng = np.random.default_rng(self.seed)
        U, V = np.asarray(self.U, float), np.asarray(self.V, float)
        self.user_factors_ = (U + self.noise * rng.normal(size=U.shape))[: data.n_users].astype(np.float32)
        self.item_factors_ = V[: data.n_items].astype(np.float32)

    def recommend(self, users, n=10, **kwargs):
        users = np.asarray(users)
        self.calls.append((users.size, n))
        return super().recommend(users, n, **kwargs)

    def predict(self, users, items, **kwargs):
        scores = super().predict(users, items, **kwargs)
        self.pairs.append((np.asarray(users).copy(), np.asarray(items).copy(), scores))
        return scores


def rows_of(X: sp.csr_matrix) -> list[dict[int, float]]:
    X = sp.csr_matrix(X)
    return [dict(zip(X[u].indices.tolist(), X[u].data.tolist())) for u in range(X.shape[0])]


def ref_user(rec_row, rel_row: dict, k):
    """Straightforward per-user ranking metrics following the written definitions."""
    seen, hits, gains = set(), [], []
    for item in list(rec_row[:k]) + [-1] * max(0, k - len(rec_row)):
        hit = item != -1 and item in rel_row and item not in seen
        if item != -1:
            seen.add(item)
        hits.append(1 if hit else 0)
        gains.append(rel_row[item] if hit else 0.0)
    n_hits, n_rel = sum(hits), len(rel_row)
    p, r = n_hits / k, n_hits / n_rel
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(rel_row.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    ap, running = 0.0, 0
    for i, h in enumerate(hits):
        if h:
            running += 1
            ap += running / (i + 1)
    first = next((i for i, h in enumerate(hits) if h), None)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "hit_rate": float(n_hits > 0), "ndcg": dcg / idcg, "map": ap / min(k, n_rel),
            "mrr": 0.0 if first is None else 1 / (first + 1)}


def ranked(scores: dict[int, float]) -> list[int]:
    """Items by score descending, ties by smaller item code."""
    return [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]
