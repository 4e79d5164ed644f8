"""Hybrid recommenders: weighted, voting, learned and switching blends of other models.

:mod:`recforge.models.hybrid.fusion` holds the normalisations and rank fusions (pure numpy);
:mod:`recforge.models.hybrid.blend` the shared component handling.
"""
from recforge.models.hybrid.learned import LearnedHybrid
from recforge.models.hybrid.switching import SwitchingHybrid
from recforge.models.hybrid.voting import VotingHybrid
from recforge.models.hybrid.weighted import WeightedHybrid

__all__ = ["WeightedHybrid", "VotingHybrid", "LearnedHybrid", "SwitchingHybrid"]
