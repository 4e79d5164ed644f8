"""Neighbourhood collaborative filtering: ItemKNN and UserKNN (implicit top-N scoring and explicit
rating prediction as Surprise's KNNBasic / KNNWithMeans / KNNBaseline)."""
from recforge.models.neighbourhood.itemknn import ItemKNN
from recforge.models.neighbourhood.userknn import UserKNN

__all__ = ["ItemKNN", "UserKNN"]
