"""Baselines: MostPopular (every user gets the most interacted-with items) and Random."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.data.pairs import is_stored
from recforge.models.base import Recommender, dense_blocks
from recforge.models.ranking import PAD_ITEM, PAD_SCORE, topn_dense
from recforge.models.training_data import TrainingData
from recforge.privacy.dp import DP


class MostPopular(Recommender):
    r"""Scores every item by its popularity in the training data, the same for every user.

    ``score(u, i) = |{v : (v, i) stored}|`` (number of users who interacted with i), or with
    ``weighted=True`` the sum of the stored values of item i. Ties: smaller item code first.
    ``privacy=recforge.privacy.DP(...)``: noisy, user-level DP counts (:mod:`recforge.privacy.counts`).
    """

    def __init__(self, weighted: bool = False, privacy: Any = None):
        self.weighted = weighted
        self.privacy = DP.of(privacy)

    def _check_params(self) -> None:
        if not isinstance(self.weighted, (bool, np.bool_)):
            raise TypeError(f"weighted must be a bool, got {type(self.weighted).__name__}")

    def _fit(self, data: TrainingData) -> None:
        R = data.matrix
        if self.privacy is not None and self.privacy.private:
            from recforge.privacy.counts import private_popularity

            self.popularity_, self.privacy_sigma_ = private_popularity(R, self.privacy)
            self._after_fit()
            return
        weights = R.data.astype(np.float64) if self.weighted else None
        self.popularity_ = np.bincount(R.indices, weights=weights, minlength=R.shape[1]).astype(np.float64)
        self._after_fit()

    def _after_fit(self) -> None:
        self.ranking_ = np.lexsort((np.arange(self.popularity_.size), -self.popularity_))

    def _restore(self, state) -> None:
        super()._restore(state)
        self._after_fit()

    def _state(self):
        state = {"popularity_": self.popularity_}
        if self.privacy is not None and self.privacy.private:
            state["privacy_sigma_"] = float(self.privacy_sigma_)
        return state

    def _recommend_rows(self, codes, rows, n, exclude):
        m = rows.shape[0]
        most_excluded = int(np.diff(exclude.indptr).max()) if exclude is not None and m else 0
        head = self.ranking_[:n + most_excluded]          # the answer lies in these for every row
        cand = np.broadcast_to(head, (m, head.size))
        if exclude is not None:
            keep = ~is_stored(exclude, np.repeat(np.arange(m), head.size), cand.ravel()).reshape(m, head.size)
        else:
            keep = np.ones((m, head.size), dtype=bool)
        place = np.cumsum(keep, axis=1) - 1
        keep &= place < n
        items = np.full((m, n), PAD_ITEM, dtype=np.int64)
        scores = np.full((m, n), PAD_SCORE, dtype=np.float32)
        r, c = np.nonzero(keep)
        items[r, place[r, c]] = cand[r, c]
        scores[r, place[r, c]] = self.popularity_[cand[r, c]]
        return items, scores

    def _predict_codes(self, users, items):
        return self.popularity_[items].astype(np.float64)


class Random(Recommender):
    """Uniformly random scores: ``score(u, i)`` is a fixed pseudo-random number in [0, 1) given
    ``seed``, ``u`` and ``i`` (splitmix64 of the pair), so results do not depend on batching.
    Users without a code (new users with ``history=``) share one random ranking."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def _check_params(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def _fit(self, data: TrainingData) -> None:
        self.seed_ = int(self.seed)

    def _state(self):
        return {"seed_": self.seed_}

    def _scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            u = np.where(users < 0, self.n_users_, users).astype(np.uint64)
            key = (np.uint64(self.seed_) * np.uint64(0x9E3779B97F4A7C15)
                   + u * np.uint64(self.n_items_ + 1) + items.astype(np.uint64))
            z = key + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def _recommend_rows(self, codes, rows, n, exclude):
        m = codes.size
        items = np.empty((m, n), dtype=np.int64)
        scores = np.empty((m, n), dtype=np.float32)
        all_items = np.arange(self.n_items_, dtype=np.int64)
        for part in dense_blocks(m, self.n_items_):
            block = self._scores(codes[part][:, None], all_items[None, :])
            sub = None if exclude is None else exclude[part]
            items[part], scores[part] = topn_dense(block, n, sub)
        return items, scores

    def _predict_codes(self, users, items):
        return self._scores(users, items)
