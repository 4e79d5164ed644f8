r"""LightGCN propagation as an ``nn.Module``: :math:`\sum_{l=0}^{L} w_l A^l E`.

On the CPU the forward and backward passes run in the compiled kernel through
:func:`recforge.torch.autograd.propagate`. On another device (CUDA) they run as ``torch.sparse``
products with a copy of A kept on that device, so a model can train on a GPU unchanged.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.kernels import _validation as v
from recforge.kernels.graph import Combine, combine_weights
from recforge.torch._imports import require_torch
from recforge.torch.autograd import propagate

torch = require_torch()


class LightGCNPropagation(torch.nn.Module):
    r"""Layer-combined embeddings :math:`\sum_{l=0}^{L} w_l A^l E` of an embedding table E.

    adjacency: the symmetric normalised n x n adjacency (scipy.sparse), e.g.
    ``recforge.kernels.normalize_adjacency(user_items)`` with users first, then items.
    layers: L >= 0. combine: "mean" (LightGCN, :math:`w_l = 1/(L+1)`), "sum", "last", or
    L + 1 weights. num_threads: the CPU kernel's threads (0: all cores).
    ``forward(E)``: E is (n, d) float32/float64; returns (n, d). No parameters of its own.
    """

    def __init__(self, adjacency: Any, layers: int = 3, combine: Combine = "mean", *, num_threads: int = 0):
        super().__init__()
        self.adjacency = v.as_csr(adjacency, "adjacency")
        if self.adjacency.shape[0] != self.adjacency.shape[1]:
            raise ValueError(f"adjacency must be square, got shape {self.adjacency.shape}")
        self.layers = v.check_int(layers, "layers", 0)
        self.combine = combine
        self.weights = combine_weights(combine, self.layers)
        self.num_threads = num_threads
        self._on_device: dict[tuple[str, Any], Any] = {}

    def forward(self, embeddings: Any) -> Any:
        if embeddings.device.type == "cpu":
            return propagate(self.adjacency, embeddings, self.layers, self.combine, num_threads=self.num_threads)
        if embeddings.dim() != 2 or embeddings.shape[0] != self.adjacency.shape[0]:
            raise ValueError(f"embeddings must be ({self.adjacency.shape[0]}, d), got {tuple(embeddings.shape)}")
        A = self._device_adjacency(embeddings.device, embeddings.dtype)
        out, x = self.weights[0] * embeddings, embeddings
        for w in self.weights[1:]:
            x = torch.sparse.mm(A, x)
            out = out + w * x
        return out

    def _device_adjacency(self, device: Any, dtype: Any) -> Any:
        key = (str(device), dtype)
        if key not in self._on_device:
            coo = sp.coo_matrix(self.adjacency)  # row-major, no duplicates: already coalesced
            indices = torch.as_tensor(np.vstack([coo.row, coo.col]).astype(np.int64))
            values = torch.as_tensor(coo.data).to(dtype)
            self._on_device[key] = torch.sparse_coo_tensor(indices, values, coo.shape, is_coalesced=True,
                                                              check_invariants=False).to(device)
        return self._on_device[key]

    def extra_repr(self) -> str:
        return f"n={self.adjacency.shape[0]}, layers={self.layers}, combine={self.combine!r}"
