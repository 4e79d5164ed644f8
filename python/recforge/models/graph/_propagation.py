r"""LightGCN propagation evaluated only where a mini-batch needs it, with its exact gradient.

With the symmetric normalised adjacency A and layer weights :math:`w_0..w_L`, LightGCN's final
embeddings are :math:`F = P E`, :math:`P = \sum_{l=0}^{L} w_l A^l`. A BPR batch reads F only at
its rows S (batch users, positive and negative items), so

* forward: :math:`E_1 = A E, \dots, E_{L-1} = A E_{L-2}` over the whole graph (every row of
  :math:`E_{L-1}` may feed S), then the last layer only at S,
  :math:`(E_L)_S = A_{S,:} E_{L-1}`; :math:`F_S = \sum_l w_l (E_l)_S`. That is L - 1 full
  sparse products instead of L;
* backward: with G the incoming gradient (non-zero on the rows S only) and A symmetric,
  :math:`\partial \ell / \partial E = P^\top G = P G = \sum_l w_l A^l G`, one call of the fused
  propagation kernel.

No gradient flows to A. CPU tensors use the compiled OpenMP kernels (``_core.spmm``,
``_core.propagate``); CUDA tensors use torch's own sparse CSR products.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge import _core
from recforge.kernels import _validation as v

_FUNCTION = None


class GraphOperator:
    """A symmetric normalised adjacency prepared once for the row-restricted propagation."""

    def __init__(self, A: sp.csr_matrix, weights: list[float], num_threads: int, dtype: Any = np.float32,
                 device: Any = None, timer: Any = None):
        self.csr = v.with_value_dtype(A.tocsr(), np.dtype(dtype))
        self.n = self.csr.shape[0]
        self.weights = [float(w) for w in weights]
        self.layers = len(self.weights) - 1
        self.threads = int(num_threads)
        self.arrays = v.core_arrays(self.csr, v.index_dtype_for(self.csr))
        self.device = device
        self.timer = timer
        self._torch_csr = None
        if device is not None and getattr(device, "type", "cpu") != "cpu":
            import torch

            self._torch_csr = torch.sparse_csr_tensor(
                torch.from_numpy(self.csr.indptr.astype(np.int64)), torch.from_numpy(self.csr.indices.astype(np.int64)),
                torch.from_numpy(self.csr.data), size=self.csr.shape).to(device)

    # -- numpy (CPU) building blocks -------------------------------------------------------
    def spmm(self, X: np.ndarray) -> np.ndarray:
        indptr, indices, data = self.arrays
        return _core.spmm(indptr, indices, data, self.n, X, self.threads)

    def rows_spmm(self, rows: np.ndarray, X: np.ndarray) -> np.ndarray:
        sub = self.csr[rows]
        indptr, indices, data = v.core_arrays(sub, v.index_dtype_for(sub))
        return _core.spmm(indptr, indices, data, sub.shape[0], X, self.threads)

    def full(self, X: np.ndarray) -> np.ndarray:
        """P X over every row (used for the final embeddings and the backward pass)."""
        indptr, indices, data = self.arrays
        return _core.propagate(indptr, indices, data, self.n, X, self.weights, self.threads)

    def rows(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(P X)_rows with L - 1 full products and the last layer at ``rows`` only."""
        out = self.weights[0] * X[rows]
        current = X
        for layer in range(1, self.layers + 1):
            if layer < self.layers:
                current = self.spmm(current)
                out += self.weights[layer] * current[rows]
            else:
                out += self.weights[layer] * self.rows_spmm(rows, current)
        return out

    # -- torch (CUDA) building blocks ------------------------------------------------------
    def torch_full(self, X):
        out = self.weights[0] * X
        current = X
        for layer in range(1, self.layers + 1):
            current = self._torch_csr @ current
            out = out + self.weights[layer] * current
        return out

    def torch_rows(self, X, rows):
        out = self.weights[0] * X[rows]
        current = X
        for layer in range(1, self.layers + 1):
            current = self._torch_csr @ current
            out = out + self.weights[layer] * current[rows]
        return out


def propagate_rows(op: GraphOperator, E: Any, rows: Any):
    r"""Differentiable :math:`(P E)_{rows}` (see the module docstring); ``rows`` int64, unique."""
    return _function().apply(E, rows, op)


def propagate_all(op: GraphOperator, E: Any):
    """:math:`P E` for every row, without gradient (final embeddings, evaluation)."""
    import torch

    with torch.no_grad():
        if E.device.type != "cpu":
            return op.torch_full(E)
        return torch.from_numpy(op.full(np.ascontiguousarray(E.detach().numpy())))


def _function():
    global _FUNCTION
    if _FUNCTION is None:
        import torch

        class PropagateRows(torch.autograd.Function):
            @staticmethod
            def forward(ctx, E, rows, op):
                ctx.op = op
                ctx.save_for_backward(rows)
                if E.device.type != "cpu":
                    return op.torch_rows(E.detach(), rows)
                x = np.ascontiguousarray(E.detach().numpy())
                return torch.from_numpy(op.rows(x, rows.numpy()))

            @staticmethod
            def backward(ctx, grad):
                (rows,) = ctx.saved_tensors
                op = ctx.op
                if op.timer is not None:
                    with op.timer.section("propagate backward"):
                        return _backward(op, rows, grad)
                return _backward(op, rows, grad)

        _FUNCTION = PropagateRows
    return _FUNCTION


def _backward(op: GraphOperator, rows, grad):
    """dE = P G with G = grad scattered to ``rows`` (A symmetric, so P is its own transpose)."""
    import torch

    full = torch.zeros((op.n, grad.shape[1]), dtype=grad.dtype, device=grad.device)
    full.index_add_(0, rows, grad)
    if full.device.type != "cpu":
        return op.torch_full(full), None, None
    return torch.from_numpy(op.full(full.numpy())), None, None
