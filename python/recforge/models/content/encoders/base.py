"""What every item encoder provides, and the import helper for the ``text`` extra.

An encoder turns one document per item (a text, or for ``attributes`` a list of labels) into
one vector per item: ``fit(docs)`` learns what it must (a vocabulary, word vectors; nothing for
a pretrained model), ``encode(docs)`` maps documents to vectors with the fitted state (so items
added later share the same space), ``version()`` names everything the vectors depend on (the
embedding cache key), ``state()`` / ``restore()`` save and load that state as plain arrays and
JSON values, and ``feature_names()`` names the dimensions when they are words or labels.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Sequence

TEXT_EXTRA = 'pip install "recforge[text]"'


def require_text(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the ``text`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs {module.split('.')[0]}: {TEXT_EXTRA}") from exc


class Encoder:
    """Base class (see the module docstring)."""

    #: the name used by ContentKNN(encoder=...) and in the cache key
    name = "encoder"
    #: True when vectors are a scipy CSR (scored through similarity_topk), else dense float32
    sparse = False
    #: True when encoding is costly enough to cache on disk
    cacheable = False
    #: True when documents are label lists (metadata fields) rather than texts
    wants_labels = False

    def fit(self, docs: Sequence[Any]) -> "Encoder":
        return self

    def encode(self, docs: Sequence[Any], progress: bool = False) -> Any:
        raise NotImplementedError

    def version(self) -> str:
        return self.name

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass

    def feature_names(self) -> list[str] | None:
        return None
