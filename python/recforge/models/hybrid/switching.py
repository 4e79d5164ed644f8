r"""SwitchingHybrid: one model for users (and items) with enough interactions, another otherwise.

A user whose history holds fewer than ``min_interactions`` items is scored by ``fallback``
(default ContentKNN), everyone else by ``primary`` (default ItemKNN). With
``min_item_interactions > 0``, a primary user's scores are min-max normalised over their
candidates, and items with fewer training interactions than that take the fallback's min-max
normalised score instead (content for cold items, collaborative filtering for the rest).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge.models.base import Recommender
from recforge.models.hybrid.blend import BlendRecommender, candidates_of
from recforge.models.hybrid.fusion import normalize_scores


class SwitchingHybrid(BlendRecommender):
    """Primary/fallback switch by history length (module docstring)."""

    #: the demo shows only the best hybrid of the content benchmark (LearnedHybrid)
    in_demo = False

    _component_params = ("primary", "fallback")

    def __init__(self, primary: Recommender | None = None, fallback: Recommender | None = None,
                 min_interactions: int = 5, min_item_interactions: int = 0):
        self.primary = primary
        self.fallback = fallback
        self.min_interactions = min_interactions
        self.min_item_interactions = min_item_interactions

    def _check_params(self) -> None:
        self._check_components()
        for name in ("min_interactions", "min_item_interactions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")

    def _fused(self, codes, history) -> Any:
        primary, fallback = self.models_
        short = np.diff(history.rows.indptr) < int(self.min_interactions)
        S = np.zeros((codes.size, self.n_items_))
        for use_fallback in (True, False):
            rows = np.flatnonzero(short == use_fallback)
            if rows.size == 0:
                continue
            sub = _rows_of(history, rows)
            if use_fallback:
                S[rows] = self._scores_of(fallback, codes[rows], sub)
            elif self.min_item_interactions > 0:
                cand = candidates_of(sub)
                P = normalize_scores(self._scores_of(primary, codes[rows], sub), cand, "minmax")
                F = normalize_scores(self._scores_of(fallback, codes[rows], sub), cand, "minmax")
                counts = np.diff(self.user_items_.tocsc().indptr)
                cold = counts < int(self.min_item_interactions)
                S[rows] = np.where(cold[None, :], F, P)
            else:
                S[rows] = self._scores_of(primary, codes[rows], sub)
        return S


def _rows_of(history, rows: np.ndarray):
    """The chunk restricted to some of its rows (a HistoryChunk with the same provenance)."""
    from recforge.models.training_data import HistoryChunk
    seqs = None if history._sequences is None else [history._sequences[r] for r in rows]
    return HistoryChunk(history.codes[rows], history.rows[rows], seqs, history._stored, history.from_caller)
