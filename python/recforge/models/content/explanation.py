"""Explanation: why a model gives an item its score, as additive contributions.

``items`` / ``item_contributions``: the user's history items and what each adds to the score
(largest magnitude first); ``features`` / ``feature_contributions``: the same split over the
vector's named dimensions (words, labels) when the model has them, else None. Each list sums
to ``score`` (up to floating-point rounding).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Explanation:
    score: float
    items: np.ndarray
    item_contributions: np.ndarray
    features: list[str] | None = None
    feature_contributions: np.ndarray | None = None

    def top_items(self, n: int = 3) -> list[tuple[Any, float]]:
        return [(self.items[k], float(self.item_contributions[k])) for k in range(min(n, len(self.items)))]

    def top_features(self, n: int = 5) -> list[tuple[str, float]]:
        if self.features is None:
            return []
        return [(self.features[k], float(self.feature_contributions[k])) for k in range(min(n, len(self.features)))]
