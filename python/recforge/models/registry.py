"""Name -> model class: what the CLI lists as "the available models" and what ``load`` may build.

Loading looks classes up here only (never imports a name found in a file), so an artifact can
only ever construct one of these classes.
"""
from __future__ import annotations

from recforge.models.base import Recommender
from recforge.models.knn import ItemKNN, UserKNN
from recforge.models.popular import MostPopular, Random

_REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender], name: str | None = None) -> type[Recommender]:
    """Add a model class under ``name`` (default: the class name); usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise TypeError(f"only recforge.models.base.Recommender subclasses can be registered, got {cls!r}")
    key = name or cls.__name__
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"a different model is already registered as {key!r}")
    _REGISTRY[key] = cls
    return cls


def get(name: str) -> type[Recommender]:
    """The model class registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


for _cls in (MostPopular, Random, ItemKNN, UserKNN):
    register(_cls)
