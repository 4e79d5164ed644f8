"""recforge.models: recommenders sharing one estimator contract (:mod:`recforge.models.base`).

* :class:`MostPopular`, :class:`Random` — baselines;
* :class:`ItemKNN`, :class:`UserKNN` — neighbourhood collaborative filtering, implicit top-N
  scoring or explicit rating prediction (Surprise's KNNBasic / KNNWithMeans / KNNBaseline);
* :func:`load` — a model saved with ``model.save(path)`` (also ``recforge.load``);
* :mod:`recforge.models.registry` — the available models by name.
"""
from recforge.models.artifacts import ArtifactError, ArtifactVersionError, load
from recforge.models.base import NotFittedError, Recommender
from recforge.models.knn import ItemKNN, UserKNN
from recforge.models.popular import MostPopular, Random
from recforge.models import registry

__all__ = ["Recommender", "MostPopular", "Random", "ItemKNN", "UserKNN", "load", "registry",
           "ArtifactError", "ArtifactVersionError", "NotFittedError"]
