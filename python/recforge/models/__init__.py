"""recforge.models: recommenders sharing one estimator contract (:mod:`recforge.models.base`).

* :class:`MostPopular`, :class:`Random` — baselines (:mod:`.popular`);
* :class:`ItemKNN`, :class:`UserKNN` — neighbourhood collaborative filtering (:mod:`.neighbourhood`);
* content, hybrid, graph and sequential families in their folders, each class reachable here by
  name (``recforge.models.LightGCN``) through :mod:`recforge.models.registry`, which imports a
  family — and its optional dependencies — only when its class is first used;
* :class:`EmbeddingRecommender` — the base of every learned-embedding model (:mod:`.embedding`);
* :func:`load` — a model saved with ``model.save(path)`` (also ``recforge.load``).
"""
from recforge.models.artifacts import ArtifactError, ArtifactVersionError, load
from recforge.models.base import NotFittedError, Recommender
from recforge.models.training_data import HistoryChunk, MissingInputError, TrainingData
from recforge.models import registry

__all__ = ["Recommender", "EmbeddingRecommender", "TrainingData", "HistoryChunk", "MostPopular", "Random",
           "ItemKNN", "UserKNN", "load", "registry", "ArtifactError", "ArtifactVersionError",
           "NotFittedError", "MissingInputError"]


def __getattr__(name: str):
    if name == "EmbeddingRecommender":
        from recforge.models.embedding import EmbeddingRecommender
        return EmbeddingRecommender
    if name == "knn":   # the module before the family folders (deprecated path)
        import importlib
        return importlib.import_module("recforge.models.knn")
    if name in registry.available():
        return registry.get(name)
    raise AttributeError(f"module 'recforge.models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(registry.available()) | {"EmbeddingRecommender"})
