r"""WeightedHybrid: a weighted sum of the components' normalised scores.

.. math:: \mathrm{score}(u, i) = \sum_m w_m\, \mathrm{norm}\big(s^{(m)}_u\big)_i

with ``normalize`` = minmax, zscore or rank over the user's candidate items
(:mod:`recforge.models.hybrid.fusion`); ``weights`` None gives every component weight 1.

An item a component cannot score (a collaborative model and an item without training
interactions) does not take that component's minimum; ``unknown`` says what it gets
(:mod:`recforge.models.hybrid.fusion`), each component normalised over the candidates it knows:

- ``"share"`` (default): nothing, and its weight is shared among the components that know the
  item, :math:`\mathrm{score}(u, i) = \frac{\sum_m |w_m|}{\sum_{m \in K(i)} |w_m|} \sum_{m \in K(i)} w_m\, \tilde s_m(u, i)`
  (a new item is ranked by the content model alone, on the blend's scale);
- ``"mean"`` (neutral): the component's mean normalised score over those candidates,
  :math:`\mathrm{score}(u, i) = \sum_m w_m\, \big([i \in K_m]\, \tilde s_m(u, i) + [i \notin K_m]\, \bar{\tilde s}_m(u)\big)`.

Measured (benchmarks/bench_content_quality.py, [ItemKNN, UserKNN, ContentKNN] equal weights):
"share" lets the blend recommend items absent from train (cold-slice NDCG@10 0.086 with
minmax on ml-latest-small leave-last-out, where "mean" scores 0) and raises NDCG@10 there
(0.0331 against 0.0315); on a per-user random split, where the items absent from train are
rare long-tail ones, it costs NDCG@10 with minmax (0.188 against 0.322 on ml-latest-small;
zscore 0.316 either way): choose "mean" when unseen items should not compete.

``explain(user, item)`` lists each component's term.
"""
from __future__ import annotations

from typing import Any, Sequence

from recforge.models.base import Recommender
from recforge.models.hybrid.blend import BlendRecommender, candidates_of, check_weights
from recforge.models.hybrid.fusion import NORMALIZATIONS, UNKNOWN_RULES, weighted_terms


class WeightedHybrid(BlendRecommender):
    """Score-level blend of ``models`` (module docstring)."""

    #: the demo shows only the best hybrid of the content benchmark (LearnedHybrid)
    in_demo = False

    def __init__(self, models: Sequence[Recommender] | None = None, weights: Sequence[float] | None = None,
                 normalize: str = "minmax", unknown: str = "share"):
        self.models = models
        self.weights = weights
        self.normalize = normalize
        self.unknown = unknown

    def _check_params(self) -> None:
        self._check_components()
        check_weights(self.weights, len(self._declared()))
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.unknown not in UNKNOWN_RULES:
            raise ValueError(f"unknown must be one of {UNKNOWN_RULES}, got {self.unknown!r}")

    def _blend_weights(self):
        return check_weights(self.weights, len(self._declared()))

    def _terms(self, codes, history) -> Any:
        blocks = [self._scores_of(m, codes, history) for m in self.models_]
        terms = weighted_terms(blocks, candidates_of(history), self._blend_weights(), self.normalize, self._known(),
                               self.unknown)
        return terms, blocks
