r"""VotingHybrid: rank-level fusion of the components' rankings.

``method="rrf"`` (reciprocal rank fusion): :math:`\sum_m w_m / (k + \mathrm{rank}_m(i))`;
``method="borda"``: :math:`\sum_m w_m (N - \mathrm{rank}_m(i) + 1)` with N candidate items.
Ranks (and N) are taken among the user's candidate items that the component can score, ties
sharing the average rank (:mod:`recforge.models.hybrid.fusion`). For an item a component
cannot score (a collaborative model and an item without training interactions), ``unknown``:

- ``"share"`` (default): no vote, and the votes the item does get are scaled to the whole
  electorate,
  :math:`\mathrm{score}(u, i) = \frac{\sum_m |w_m|}{\sum_{m \in K(i)} |w_m|} \sum_{m \in K(i)} w_m\, v_m(u, i)`;
- ``"mean"`` (neutral): the component's mean vote over the candidates it knows
  (:math:`(N+1)/2` Borda points; the mean of :math:`1/(k + r)`, r = 1..N, for rrf).

See WeightedHybrid for the measured trade-off (Borda with "share" is hit hardest on a random
split: its linear points let many long-tail items with a strong content score in).
``explain(user, item)`` lists the votes.
"""
from __future__ import annotations

from typing import Any, Sequence

from recforge.models.base import Recommender
from recforge.models.hybrid.blend import BlendRecommender, candidates_of, check_weights
from recforge.models.hybrid.fusion import UNKNOWN_RULES, VOTING_METHODS, rank_terms


class VotingHybrid(BlendRecommender):
    """Rank-level blend of ``models`` (module docstring)."""

    #: the demo shows only the best hybrid of the content benchmark (LearnedHybrid)
    in_demo = False

    def __init__(self, models: Sequence[Recommender] | None = None, method: str = "rrf", k: float = 60.0,
                 weights: Sequence[float] | None = None, unknown: str = "share"):
        self.models = models
        self.method = method
        self.k = k
        self.weights = weights
        self.unknown = unknown

    def _check_params(self) -> None:
        self._check_components()
        check_weights(self.weights, len(self._declared()))
        if self.method not in VOTING_METHODS:
            raise ValueError(f"method must be one of {VOTING_METHODS}, got {self.method!r}")
        if not (isinstance(self.k, (int, float)) and self.k >= 0):
            raise ValueError(f"k must be a number >= 0, got {self.k!r}")
        if self.unknown not in UNKNOWN_RULES:
            raise ValueError(f"unknown must be one of {UNKNOWN_RULES}, got {self.unknown!r}")

    def _terms(self, codes, history) -> Any:
        blocks = [self._scores_of(m, codes, history) for m in self.models_]
        terms = rank_terms(blocks, candidates_of(history), check_weights(self.weights, len(self._declared())),
                           self.method, float(self.k), self._known(), self.unknown)
        return terms, blocks
