"""HybridExplanation: a hybrid's score split into its components' terms.

``components``: one :class:`ComponentContribution` per component model, in the hybrid's
order: its term of the fused score (``contribution``; the terms sum to ``score``), its own
score for the pair (``component_score``, on the component's scale), whether it can score the
item at all (``knows_item``: an item it does not know takes no term from it, or, in
LearnedHybrid, the learned constant for unknown items), and its own explanation
(``explanation``: a :class:`recforge.models.explanation.Explanation`, or None when the
component has no ``explain``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recforge.models.explanation import Explanation


@dataclass
class ComponentContribution:
    index: int
    model: str
    contribution: float
    component_score: float
    knows_item: bool
    explanation: Explanation | None = None


@dataclass
class HybridExplanation(Explanation):
    components: list[ComponentContribution] = field(default_factory=list)

    def top_components(self, n: int | None = None) -> list[tuple[str, float]]:
        """(model name, contribution) pairs, largest magnitude first (ties: component order)."""
        order = sorted(self.components, key=lambda c: (-abs(c.contribution), c.index))
        return [(c.model, c.contribution) for c in order[:n]]

    def component(self, index: int) -> Any:
        return self.components[index]
