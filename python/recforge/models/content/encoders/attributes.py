"""Multi-hot attribute vectors: one dimension per (field, value) label.

Documents are label lists built from metadata fields: a list/array cell gives its elements
(the Amazon ``*_item2attributes.json`` attribute lists), a string cell is split on "|"
(MovieLens genres). Labels are ``"field=value"``; a value seen only after fit is ignored.
Rows are scaled to unit L2 norm (cosine between items = shared labels / sqrt(|a| |b|)).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.models.content.encoders.base import Encoder


def metadata_labels(meta: Any, fields: Sequence[str]) -> list[list[str]]:
    """One label list per row of the metadata table, from the fields it has."""
    present = [f for f in fields if f in meta.columns]
    if not present:
        from recforge.models.training_data import MissingInputError
        raise MissingInputError(f"item metadata has none of the fields {list(fields)}; it has {list(meta.columns)}")
    out: list[list[str]] = [[] for _ in range(len(meta))]
    for f in present:
        for row, cell in enumerate(meta[f].tolist()):
            if isinstance(cell, (list, tuple, np.ndarray)):
                values = [str(x) for x in cell]
            elif cell is None or (isinstance(cell, float) and np.isnan(cell)):
                values = []
            else:
                values = [x for x in str(cell).split("|") if x]
            out[row].extend(f"{f}={x}" for x in values)
    return out


class AttributesEncoder(Encoder):
    name = "attributes"
    sparse = True
    wants_labels = True

    def __init__(self):
        self._labels: list[str] | None = None

    def fit(self, docs: Sequence[Sequence[str]]) -> "AttributesEncoder":
        self._labels = sorted({label for doc in docs for label in doc})
        return self

    def encode(self, docs: Sequence[Sequence[str]], progress: bool = False) -> sp.csr_matrix:
        if self._labels is None:
            raise RuntimeError("the attributes encoder is not fitted")
        index = {label: k for k, label in enumerate(self._labels)}
        cols = [sorted({index[x] for x in doc if x in index}) for doc in docs]
        lengths = np.array([len(c) for c in cols], dtype=np.int64)
        indptr = np.r_[0, np.cumsum(lengths)]
        indices = np.fromiter((c for row in cols for c in row), dtype=np.int64, count=int(lengths.sum()))
        data = np.repeat(1.0 / np.sqrt(np.maximum(lengths, 1)), lengths).astype(np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(len(docs), len(self._labels)))

    def version(self) -> str:
        return "attributes"

    def feature_names(self) -> list[str]:
        return list(self._labels or [])

    def state(self) -> dict[str, Any]:
        return {"labels": list(self._labels or [])}

    def restore(self, state: dict[str, Any]) -> None:
        self._labels = [str(x) for x in state["labels"]]
