r"""ItemKNN: item-based neighbourhood collaborative filtering.

With :math:`N_k(j)` the k most similar items of item j and :math:`r_{uj}` the stored value,
:math:`\mathrm{score}(u, i) = \sum_{j \in I_u,\ i \in N_k(j)} r_{uj}\, s(j, i)` (implicit feedback), or
Surprise's KNNBasic / KNNWithMeans / KNNBaseline rating prediction over the items the user rated
(explicit feedback); see :mod:`recforge.models.neighbourhood.knn_base`.
"""
from __future__ import annotations

from recforge.models.neighbourhood.knn_base import NeighbourhoodModel


class ItemKNN(NeighbourhoodModel):
    """Item-based k-NN (see :mod:`recforge.models.neighbourhood.knn_base` for the formulas)."""

    user_based = False
