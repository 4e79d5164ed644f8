"""Differentiable kernels: :func:`propagate` as a ``torch.autograd.Function`` over the compiled core.

Importing this module does not import torch; calling a function does, and raises an
ImportError naming the extra when torch is missing.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge import _core
from recforge.backend import resolve_num_threads
from recforge.kernels import _validation as v
from recforge.kernels.graph import Combine, combine_weights
from recforge.torch._imports import require_torch

SYMMETRY_RTOL = 1e-5

_FUNCTION = None
_PREPARED: dict[int, tuple[Any, tuple, dict]] = {}  # id(A) -> (weakref, fingerprint, {dtype: arrays})


def propagate(A: Any, E: Any, layers: int, combine: Combine = "mean", *, num_threads: int = 0):
    r"""Differentiable LightGCN propagation :math:`\sum_l w_l A^l E` (see recforge.kernels.propagate).

    A: a symmetric n x n matrix (scipy.sparse, or a torch sparse COO/CSR tensor), e.g. from
    :func:`recforge.kernels.normalize_adjacency`; E: an n x d float32/float64 CPU tensor. Because
    A is symmetric, the gradient :math:`\partial L / \partial E = \sum_l w_l A^l G` is the same
    kernel applied to the incoming gradient G. Tensors reach the kernel as numpy views (no copy
    when contiguous) and results come back with ``torch.from_numpy``. A is checked once
    (square, symmetric up to a relative 1e-5) and its arrays are cached while it lives; changing
    its values in place afterwards is not detected. No gradient flows to A.
    """
    torch = require_torch()
    if not isinstance(E, torch.Tensor):
        raise TypeError(f"E must be a torch.Tensor, got {type(E).__name__}")
    if E.device.type != "cpu":
        raise ValueError(f"E must be a CPU tensor (recforge.torch.propagate runs on the CPU), got device {E.device}")
    if E.dim() != 2:
        raise ValueError(f"E must be 2-D, got shape {tuple(E.shape)}")
    if E.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"E must be float32 or float64, got {E.dtype}")
    if isinstance(A, torch.Tensor) and A.requires_grad:
        raise ValueError("A must not require grad: gradients with respect to A are not supported")
    if isinstance(layers, (bool, np.bool_)) or not isinstance(layers, (int, np.integer)):
        raise TypeError(f"layers must be an integer, got {type(layers).__name__}")
    if layers < 0:
        raise ValueError(f"layers must be >= 0, got {layers}")
    weights = combine_weights(combine, int(layers))
    threads = resolve_num_threads(num_threads)
    dtype = np.float64 if E.dtype == torch.float64 else np.float32
    arrays, n = _prepared(A, np.dtype(dtype))
    if E.shape[0] != n:
        raise ValueError(f"E must have one row per node of A ({n}), got {E.shape[0]}")
    if not bool(torch.isfinite(E).all()):
        raise ValueError("E contains NaN or infinite values")
    return _function().apply(E, arrays, n, weights, threads)


def _run(arrays, n: int, X, weights: list[float], threads: int):
    torch = require_torch()
    x = X.detach()
    if not x.is_contiguous():
        x = x.contiguous()
    indptr, indices, data = arrays
    out = _core.propagate(indptr=indptr, indices=indices, data=data, rows=n, E=x.numpy(), weights=weights,
                          num_threads=threads)
    return torch.from_numpy(out)


def _function():
    global _FUNCTION
    if _FUNCTION is None:
        torch = require_torch()

        class Propagate(torch.autograd.Function):
            """out = sum_l w_l A^l E; backward: dE = sum_l w_l A^l G (A symmetric)."""

            @staticmethod
            def forward(ctx, E, arrays, n, weights, threads):
                ctx.arrays, ctx.n, ctx.weights, ctx.threads = arrays, n, weights, threads
                return _run(arrays, n, E, weights, threads)

            @staticmethod
            def backward(ctx, grad):
                grad_E = _run(ctx.arrays, ctx.n, grad, ctx.weights, ctx.threads) if ctx.needs_input_grad[0] else None
                return grad_E, None, None, None, None

        _FUNCTION = Propagate
    return _FUNCTION


def _prepared(A: Any, dtype: np.dtype) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int]:
    """(indptr, indices, data) of A in ``dtype``, checked square and symmetric once per A object."""
    key = id(A)
    entry = _PREPARED.get(key)
    fingerprint = _fingerprint(A)
    if entry is None or entry[0]() is not A or entry[1] != fingerprint:
        csr = _symmetric_csr(A)
        try:
            ref = weakref.ref(A, lambda _, key=key, cache=_PREPARED: cache.pop(key, None))
        except TypeError:  # not weak-referenceable: checked on every call
            ref = None
        entry = (ref or (lambda: None), fingerprint, {"csr": csr})
        if ref is not None:
            _PREPARED[key] = entry
    cache = entry[2]
    if dtype not in cache:
        csr = v.with_value_dtype(cache["csr"], dtype)
        cache[dtype] = v.core_arrays(csr, v.index_dtype_for(csr))
    return cache[dtype], cache["csr"].shape[0]


def _fingerprint(A: Any) -> tuple:
    if sp.issparse(A):
        parts = [getattr(A, name, None) for name in ("data", "indices", "indptr", "row", "col")]
        return (A.shape, A.nnz) + tuple(p.__array_interface__["data"][0] for p in parts if p is not None)
    return (tuple(getattr(A, "shape", ())), getattr(A, "_version", None))


def _symmetric_csr(A: Any) -> sp.csr_matrix:
    A = v.as_csr(_to_scipy(A), "A")
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square, got shape {A.shape}")
    if A.nnz:
        diff = abs(A - A.T)
        scale = float(abs(A.data).max())
        if diff.nnz and float(diff.max()) > SYMMETRY_RTOL * scale:
            raise ValueError("A must be symmetric (the backward pass multiplies by A as its own transpose); "
                             f"max |A - A.T| = {float(diff.max()):.3g}")
    return A


def _to_scipy(A: Any) -> Any:
    """scipy.sparse stays; torch sparse CSR/COO tensors become scipy CSR (views where possible)."""
    if sp.issparse(A):
        return A
    torch = require_torch()
    if isinstance(A, torch.Tensor):
        if A.device.type != "cpu":
            raise ValueError(f"A must live on the CPU, got device {A.device}")
        if A.layout == torch.sparse_csr:
            return sp.csr_matrix((A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()),
                                 shape=tuple(A.shape))
        if A.layout == torch.sparse_coo:
            C = A.coalesce()
            rows, cols = C.indices().numpy()
            return sp.csr_matrix((C.values().numpy(), (rows, cols)), shape=tuple(A.shape))
        raise TypeError("A must be a sparse matrix (scipy.sparse, or a torch sparse COO/CSR tensor), "
                        "got a dense tensor")
    raise TypeError(f"A must be a scipy.sparse matrix or a torch sparse tensor, got {type(A).__name__}")
