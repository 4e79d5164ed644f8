"""A truncated-SVD embedding model for the serving benchmark (imported by the server with
``recforge serve --import serving_svd_model``, which registers it)."""
from __future__ import annotations

import numpy as np

from recforge.models import registry
from recforge.models.embedding import EmbeddingRecommender


class BenchTruncatedSVD(EmbeddingRecommender):
    """R ~ U S V^T with the top ``factors`` singular triplets (scipy's svds): user vectors U S,
    item vectors V, score(u, i) = (U S)_u . V_i; a history h folds in as h V (for a stored row,
    exactly its stored vector)."""

    def __init__(self, factors: int = 64, seed: int = 0, num_threads: int = 0):
        self.factors = factors
        self.seed = seed
        self.num_threads = num_threads

    def _fit(self, data) -> None:
        from scipy.sparse.linalg import svds

        R = data.matrix.astype(np.float64)
        u, s, vt = svds(R, k=int(self.factors), random_state=int(self.seed))
        self.user_factors_ = np.ascontiguousarray(u * s, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(vt.T, dtype=np.float32)

    def _fold_in(self, history):
        return np.asarray(history.rows @ self.item_factors_, dtype=np.float32)


registry.register(BenchTruncatedSVD)
