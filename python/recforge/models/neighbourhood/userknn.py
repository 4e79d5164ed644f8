r"""UserKNN: user-based neighbourhood collaborative filtering.

With :math:`N_k(u)` the k most similar users of user u,
:math:`\mathrm{score}(u, i) = \sum_{v \in N_k(u)} s(u, v)\, r_{vi}` (implicit feedback), or Surprise's
KNNBasic / KNNWithMeans / KNNBaseline rating prediction over the users who rated the item
(explicit feedback); see :mod:`recforge.models.neighbourhood.knn_base`.
"""
from __future__ import annotations

from recforge.models.neighbourhood.knn_base import NeighbourhoodModel


class UserKNN(NeighbourhoodModel):
    """User-based k-NN (see :mod:`recforge.models.neighbourhood.knn_base` for the formulas)."""

    user_based = True
