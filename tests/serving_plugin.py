"""A custom model for the serving tests, loaded by the server through `recforge serve --import`:
it requires ordered sequences and recommends the items that follow the last one in code order
(score of item j: -((j - last - 1) mod n_items)), so only the order of a history matters."""
from __future__ import annotations

import numpy as np

from recforge.models import registry
from recforge.models.base import Recommender
from recforge.models.ranking import topn_dense


class NextCodes(Recommender):
    requires = frozenset({"sequences"})

    def __init__(self, unused: int = 0):
        self.unused = unused

    def _fit(self, data) -> None:
        self.fitted_ = 1

    def _recommend_chunk(self, codes, history, n, exclude):
        n_items = self.n_items_
        last = np.array([seq[-1] if len(seq) else -1 for seq in history.sequences], dtype=np.int64)
        j = np.arange(n_items, dtype=np.int64)
        scores = -((j[None, :] - last[:, None] - 1) % n_items).astype(np.float32)
        return topn_dense(scores, n, exclude)

    def _state(self):
        return {"fitted_": 1}


registry.register(NextCodes)
