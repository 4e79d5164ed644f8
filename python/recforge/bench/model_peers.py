"""Peer libraries' versions of recforge's models, for the model benchmarks (benchmarks/bench_knn.py).

Imported inside the functions (Surprise, implicit and pandas are extras).

* :func:`surprise_knn_predict` — Surprise's user-based KNNBasic / KNNWithMeans / KNNBaseline
  (msd similarity) fitted on (user, item, rating) triples, predicting test pairs.
* :class:`ImplicitCosineTopN` — implicit's CosineRecommender behind recforge's
  ``fit(R)`` / ``recommend(users, n, exclude_seen=...)`` so that ``recforge.evaluate`` scores it.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

#: recforge UserKNN(centering=...) -> the Surprise algorithm with the same prediction rule
SURPRISE_KNN = {"none": "KNNBasic", "mean": "KNNWithMeans", "baseline": "KNNBaseline"}


def surprise_knn_predict(train: np.ndarray, test: np.ndarray, centering: str, k: int = 40,
                         rating_range: tuple[float, float] = (1, 5)) -> np.ndarray:
    """Surprise's user-based msd KNN fitted on ``train`` rows (user, item, rating); predictions
    for the (user, item) pairs of ``test``, in order (unknown users/items get Surprise's default)."""
    import pandas as pd
    import surprise

    frame = pd.DataFrame({"u": train[:, 0], "i": train[:, 1], "r": train[:, 2].astype(float)})
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=rating_range)).build_full_trainset()
    algo = getattr(surprise, SURPRISE_KNN[centering])(k=k, sim_options={"name": "msd", "user_based": True},
                                                      verbose=False)
    algo.fit(trainset)
    return np.array([algo.predict(u, i).est for u, i in zip(test[:, 0].tolist(), test[:, 1].tolist())])


class ImplicitCosineTopN:
    """implicit's CosineRecommender (K = k + 1: its lists include the item itself) as a top-N model."""

    def __init__(self, k: int, threads: int):
        self.k, self.threads = k, threads

    def fit(self, R: sp.spmatrix) -> "ImplicitCosineTopN":
        from implicit.nearest_neighbours import CosineRecommender

        self.R = sp.csr_matrix(R, dtype=np.float32)
        self.model = CosineRecommender(K=self.k + 1, num_threads=self.threads)
        with warnings.catch_warnings():   # implicit warns about a conversion it makes itself
            warnings.simplefilter("ignore")
            self.model.fit(self.R, show_progress=False)
        return self

    def recommend(self, users, n: int = 10, *, exclude_seen: bool = True):
        users = np.asarray(users)
        items, scores = self.model.recommend(users, self.R[users], N=n, filter_already_liked_items=exclude_seen)
        return np.where(np.isfinite(scores) & (scores > -1e30), items, -1), scores
