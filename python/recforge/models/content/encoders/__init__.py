"""Item encoders of ContentKNN: ``tfidf``, ``word2vec``, ``bert``, ``attributes`` or a callable.

``make_encoder(spec, options)`` builds one; each lives in its own module and imports its
library (scikit-learn, gensim, sentence-transformers) only when used.
"""
from __future__ import annotations

from typing import Any

from recforge.models.content.encoders.attributes import AttributesEncoder, metadata_labels
from recforge.models.content.encoders.base import TEXT_EXTRA, Encoder, require_text
from recforge.models.content.encoders.bert import BertEncoder, bundled_model_path
from recforge.models.content.encoders.callable_encoder import CallableEncoder
from recforge.models.content.encoders.tfidf import TfidfEncoder
from recforge.models.content.encoders.word2vec import Word2VecEncoder

ENCODERS = {"tfidf": TfidfEncoder, "word2vec": Word2VecEncoder, "bert": BertEncoder, "attributes": AttributesEncoder}


def make_encoder(spec: Any, options: dict | None = None) -> Encoder:
    """The encoder named ``spec`` (with ``options``), or a CallableEncoder around a function."""
    options = dict(options or {})
    if callable(spec):
        return CallableEncoder(spec, sparse_output=bool(options.pop("sparse", False)))
    if spec not in ENCODERS:
        raise ValueError(f"encoder must be one of {sorted(ENCODERS)} or a callable texts -> vectors, got {spec!r}")
    return ENCODERS[spec](**options)


__all__ = ["Encoder", "ENCODERS", "make_encoder", "TfidfEncoder", "Word2VecEncoder", "BertEncoder",
           "AttributesEncoder", "CallableEncoder", "metadata_labels", "bundled_model_path", "require_text",
           "TEXT_EXTRA"]
