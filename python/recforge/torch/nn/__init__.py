"""Shared torch layers of recforge's models, each loaded on first use.

- :class:`LightGCNPropagation` (:mod:`.propagation`): layer-combined LightGCN embeddings.
- :class:`SequenceEncoder`, :class:`TransformerBlock` (:mod:`.transformer`): SASRec/BERT4Rec blocks.
"""
from __future__ import annotations

import importlib

# Public name -> submodule that defines it. A new layer file adds its names here.
_LAYERS = {
    "LightGCNPropagation": "propagation",
    "SequenceEncoder": "transformer",
    "TransformerBlock": "transformer",
}

__all__ = sorted(_LAYERS)


def __getattr__(name: str):
    if name in _LAYERS:
        value = getattr(importlib.import_module(f"{__name__}.{_LAYERS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
