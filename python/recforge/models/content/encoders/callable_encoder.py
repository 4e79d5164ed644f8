"""Any function ``texts -> vectors`` as an encoder (dense array or scipy sparse matrix).

Its vectors are not cached (the function's identity says nothing about its code) and a model
using one cannot be saved (a function is not data); ``add_items`` calls it again.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.models.content.encoders.base import Encoder


class CallableEncoder(Encoder):
    name = "callable"

    def __init__(self, fn: Callable[[list[str]], Any], sparse_output: bool):
        self.fn = fn
        self.sparse = sparse_output

    def encode(self, docs: Sequence[str], progress: bool = False) -> Any:
        out = self.fn(list(docs))
        if sp.issparse(out):
            out = sp.csr_matrix(out, dtype=np.float32)
            out.sort_indices()
        else:
            out = np.asarray(out, dtype=np.float32)
            if out.ndim != 2:
                raise ValueError(f"the encoder function must return a 2-D array (one row per text), got shape {out.shape}")
        if out.shape[0] != len(docs):
            raise ValueError(f"the encoder function returned {out.shape[0]} rows for {len(docs)} texts")
        return out
