"""Name -> model class: what the CLI lists as "the available models" and what ``load`` may build.

The registry holds dotted paths, not classes, so ``import recforge.models`` imports no family's
dependencies (torch, pandas, scikit-learn, gensim, sentence-transformers): a family module is
imported when its class is first asked for (``registry.get("LightGCN")``,
``recforge.models.LightGCN``, or loading a saved LightGCN). Loading looks classes up here only
(never imports a name found in a file), so an artifact can only ever construct one of these.
"""
from __future__ import annotations

import importlib

from recforge.models.base import Recommender

#: built-in models: name -> "module:Class" (one line per model; families add theirs here)
_PATHS: dict[str, str] = {
    "MostPopular": "recforge.models.popular:MostPopular",
    "Random": "recforge.models.popular:Random",
    "ItemKNN": "recforge.models.neighbourhood.itemknn:ItemKNN",
    "UserKNN": "recforge.models.neighbourhood.userknn:UserKNN",
    "ContentKNN": "recforge.models.content.contentknn:ContentKNN",
    "WeightedHybrid": "recforge.models.hybrid.weighted:WeightedHybrid",
    "VotingHybrid": "recforge.models.hybrid.voting:VotingHybrid",
    "LearnedHybrid": "recforge.models.hybrid.learned:LearnedHybrid",
    "SwitchingHybrid": "recforge.models.hybrid.switching:SwitchingHybrid",
    "LightGCN": "recforge.models.graph.lightgcn:LightGCN",
    "BPRMF": "recforge.models.graph.bprmf:BPRMF",
    "SASRec": "recforge.models.sequential.sasrec:SASRec",
    "BERT4Rec": "recforge.models.sequential.bert4rec:BERT4Rec",
}

_CLASSES: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender], name: str | None = None) -> type[Recommender]:
    """Add a model class under ``name`` (default: the class name); usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise TypeError(f"only recforge.models.base.Recommender subclasses can be registered, got {cls!r}")
    key = name or cls.__name__
    if key in _CLASSES and _CLASSES[key] is not cls:
        raise ValueError(f"a different model is already registered as {key!r}")
    if key in _PATHS and key not in _CLASSES and f"{cls.__module__}:{cls.__qualname__}" != _PATHS[key]:
        raise ValueError(f"{key!r} is a built-in model ({_PATHS[key]}); register yours under another name")
    _CLASSES[key] = cls
    return cls


def get(name: str) -> type[Recommender]:
    """The model class registered as ``name`` (its module is imported on first use)."""
    if name in _CLASSES:
        return _CLASSES[name]
    if name not in _PATHS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}")
    module_name, _, attr = _PATHS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    _CLASSES[name] = cls
    return cls


def path_of(name: str) -> str | None:
    """The dotted path of a built-in model ("module:Class"), or None for one registered at run time."""
    return _PATHS.get(name)


def available() -> list[str]:
    """Names of every registered model, sorted (built-in and registered at run time)."""
    return sorted(set(_PATHS) | set(_CLASSES))
