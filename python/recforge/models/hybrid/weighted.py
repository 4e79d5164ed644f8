r"""WeightedHybrid: a weighted sum of the components' normalised scores.

.. math:: \mathrm{score}(u, i) = \sum_m w_m\, \mathrm{norm}\big(s^{(m)}_u\big)_i

with ``normalize`` = minmax, zscore or rank over the user's candidate items
(:mod:`recforge.models.hybrid.fusion`); ``weights`` None gives every component weight 1.

An item a component cannot score (a collaborative model and an item without training
interactions) takes no term from that component; the others' weights grow to fill its share:

.. math:: \mathrm{score}(u, i) = \frac{\sum_m |w_m|}{\sum_{m \in K(i)} |w_m|}
          \sum_{m \in K(i)} w_m\, \mathrm{norm}\big(s^{(m)}_u\big)_i,

:math:`K(i)` the components that know item i, each normalised over the candidates it knows.
So a new item is ranked by the content model's opinion on the blend's scale instead of
sinking below every item the collaborative models know. ``explain(user, item)`` lists the terms.
"""
from __future__ import annotations

from typing import Any, Sequence

from recforge.models.base import Recommender
from recforge.models.hybrid.blend import BlendRecommender, candidates_of, check_weights
from recforge.models.hybrid.fusion import NORMALIZATIONS, weighted_terms


class WeightedHybrid(BlendRecommender):
    """Score-level blend of ``models`` (module docstring)."""

    #: the demo shows only the best hybrid of the content benchmark (LearnedHybrid)
    in_demo = False

    def __init__(self, models: Sequence[Recommender] | None = None, weights: Sequence[float] | None = None,
                 normalize: str = "minmax"):
        self.models = models
        self.weights = weights
        self.normalize = normalize

    def _check_params(self) -> None:
        self._check_components()
        check_weights(self.weights, len(self._declared()))
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")

    def _blend_weights(self):
        return check_weights(self.weights, len(self._declared()))

    def _terms(self, codes, history) -> Any:
        blocks = [self._scores_of(m, codes, history) for m in self.models_]
        terms = weighted_terms(blocks, candidates_of(history), self._blend_weights(), self.normalize, self._known())
        return terms, blocks
