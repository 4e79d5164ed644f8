"""Deprecated module path: ItemKNN and UserKNN live in :mod:`recforge.models.neighbourhood`.

``from recforge.models.knn import ItemKNN`` keeps working with a DeprecationWarning; import
them from :mod:`recforge.models` instead.
"""
import warnings

from recforge.models.neighbourhood.itemknn import ItemKNN
from recforge.models.neighbourhood.knn_base import NeighbourhoodModel
from recforge.models.neighbourhood.userknn import UserKNN

warnings.warn("recforge.models.knn is deprecated: import ItemKNN and UserKNN from recforge.models",
              DeprecationWarning, stacklevel=2)

__all__ = ["ItemKNN", "UserKNN", "NeighbourhoodModel"]
