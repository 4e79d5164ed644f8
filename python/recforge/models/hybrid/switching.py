r"""SwitchingHybrid: one model for users (and items) with enough interactions, another otherwise.

A user whose history holds fewer than ``min_interactions`` items is scored by ``fallback``
(default ContentKNN), everyone else by ``primary`` (default ItemKNN). With
``min_item_interactions > 0``, a primary user's scores are min-max normalised over their
candidates, and items with fewer training interactions than that take the fallback's min-max
normalised score instead (content for cold items, collaborative filtering for the rest).
``explain(user, item)`` gives the term of the component that scored the pair (the other's is 0).
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

    def _terms(self, codes, history) -> Any:
        """(primary's term, fallback's term): each row or item is scored by one of the two, the
        other's term is 0 there; a component not consulted for a row has own scores NaN."""
        primary, fallback = self.models_
        short = np.diff(history.rows.indptr) < int(self.min_interactions)
        P = np.zeros((codes.size, self.n_items_))
        F = np.zeros((codes.size, self.n_items_))
        raw_p = np.full((codes.size, self.n_items_), np.nan)
        raw_f = np.full((codes.size, self.n_items_), np.nan)
        cold = np.diff(self.user_items_.tocsc().indptr) < int(self.min_item_interactions)
        for use_fallback in (True, False):
            rows = np.flatnonzero(short == use_fallback)
            if rows.size == 0:
                continue
            sub = _rows_of(history, rows)
            if use_fallback:
                F[rows] = raw_f[rows] = self._scores_of(fallback, codes[rows], sub)
                continue
            raw_p[rows] = self._scores_of(primary, codes[rows], sub)
            if self.min_item_interactions > 0:
                raw_f[rows] = self._scores_of(fallback, codes[rows], sub)
                cand = candidates_of(sub)
                P[rows] = np.where(cold[None, :], 0.0, normalize_scores(raw_p[rows], cand, "minmax"))
                F[rows] = np.where(cold[None, :], normalize_scores(raw_f[rows], cand, "minmax"), 0.0)
            else:
                P[rows] = raw_p[rows]
        return [P, F], [raw_p, raw_f]


def _rows_of(history, rows: np.ndarray):
    """The chunk restricted to some of its rows (a HistoryChunk with the same provenance)."""
    from recforge.models.training_data import HistoryChunk
    seqs = None if history._sequences is None else [history._sequences[r] for r in rows]
    return HistoryChunk(history.codes[rows], history.rows[rows], seqs, history._stored, history.from_caller)
