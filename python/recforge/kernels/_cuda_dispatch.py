"""The CUDA side of the kernel API: prepares device operands and calls ``recforge._cuda``.

``similarity_core_cuda`` is called by :func:`recforge.kernels.similarity_topk` with the same
prepared operands the CPU core gets. ``dense_topk_cuda``, ``spmm_cuda`` and ``propagate_cuda``
are the GPU twins of the CPU kernels of the same names (same arguments, same results up to
float rounding, same tie rule); they validate their inputs, which may be numpy/scipy (copied
to the GPU and back), cupy/cupyx (zero-copy, results stay on the GPU) or CUDA torch tensors.
Each raises :class:`recforge.backend.BackendUnavailableError` when CUDA cannot be used.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.backend import resolve_backend
from recforge.kernels import _validation as v
from recforge.kernels.graph import combine_weights
from recforge.kernels._cuda_arrays import (Placement, check_dense, device_csr, is_cupy_sparse, is_torch,
                                           on_device)

_INT32_MAX = int(np.iinfo(np.int32).max)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def scratch_budget(requested: int = 0) -> int:
    """Bytes a CUDA kernel may use for its largest scratch buffer (0 = automatic: a third of the
    free device memory, at most 2 GiB). ``RECFORGE_CUDA_MEMORY_BUDGET`` overrides it (tests use it
    to force many tiles)."""
    env = os.environ.get("RECFORGE_CUDA_MEMORY_BUDGET", "").strip()
    if requested:
        return int(requested)
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"RECFORGE_CUDA_MEMORY_BUDGET must be a number of bytes, got {env!r}") from None
        if value < 0:
            raise ValueError(f"RECFORGE_CUDA_MEMORY_BUDGET must be >= 0, got {value}")
        return value
    return 0


def _require_cuda(*arrays: Any) -> None:
    resolve_backend("cuda", *arrays)


def _check_index_range(shape: tuple, name: str) -> None:
    if max(shape) > _INT32_MAX:
        raise ValueError(f"{name} has a dimension above 2**31 - 1, which the CUDA kernels do not support; "
                         f"use backend='cpu'")


# -- similarity_topk -------------------------------------------------------------------------------

def similarity_core_cuda(X: sp.csr_matrix, Y: sp.csr_matrix, kind: int, count: bool, k: int, shrink: float,
                         min_support: float, x_scale, y_scale, x_size, y_size, symmetric: bool, *,
                         use_values: bool = True, wide_indices: bool = False, exclude: Any = None,
                         device_output: bool = False, memory_budget: int = 0):
    """The CUDA twin of ``_core.similarity_topk`` for prepared operands: the rows of X against the
    rows of Y (Y is transposed on the device). Returns the k best per row as a CSR.

    X and Y are canonical CSR with the same float dtype, which is also the score dtype.
    ``exclude`` (optional m x n sparse matrix): row i never returns a column stored in its row i
    (the stored pattern counts, not the values). The
    result's index dtype follows the CPU core: int64 when ``wide_indices`` or the output is too
    large, else int32. ``device_output=True`` returns a cupyx.scipy.sparse CSR.
    """
    from recforge import _cuda

    m, d = X.shape
    n = Y.shape[0]
    _check_index_range((m, n, d), "the similarity operands")
    value_dtype = np.dtype(X.dtype)
    place = Placement()
    if device_output:
        place.kind = "cupy"  # the caller passed cupyx input, so cupy is importable
    stage = place.stage
    staged = dict(
        x_indptr=stage(X.indptr, np.int64), x_indices=stage(X.indices, np.int32),
        x_data=stage(X.data if use_values else None, value_dtype),
        x_scale=stage(x_scale, value_dtype), x_size=stage(x_size, np.int64))
    if Y is X:  # symmetric: one copy on the device
        for name in ("indptr", "indices", "data"):
            staged[f"y_{name}"] = staged[f"x_{name}"]
    else:
        staged.update(y_indptr=stage(Y.indptr, np.int64), y_indices=stage(Y.indices, np.int32),
                      y_data=stage(Y.data if use_values else None, value_dtype))
    staged["y_scale"] = staged["x_scale"] if y_scale is x_scale else stage(y_scale, value_dtype)
    staged["y_size"] = staged["x_size"] if y_size is x_size else stage(y_size, np.int64)
    ex_p, ex_i = _exclusion(exclude, m, n)
    ex_p, ex_i = stage(ex_p, np.int64), stage(ex_i, np.int64)
    out_i = place.empty((m, k), np.int64)
    out_s = place.empty((m, k), value_dtype)
    out_c = place.empty((m,), np.int64)
    _cuda.similarity_topk(
        staged["x_indptr"].ptr, staged["x_indices"].ptr, staged["x_data"].ptr, m, d,
        staged["y_indptr"].ptr, staged["y_indices"].ptr, staged["y_data"].ptr, n, kind, bool(count), k,
        float(shrink), float(min_support), staged["x_scale"].ptr, staged["y_scale"].ptr, staged["x_size"].ptr,
        staged["y_size"].ptr, bool(symmetric), value_dtype == np.float64, ex_p.ptr, ex_i.ptr,
        out_i.ptr, out_s.ptr, out_c.ptr,
        place.device, place.stream, scratch_budget(memory_budget))
    indices, scores, counts = place.result(out_i), place.result(out_s), place.result(out_c)
    xp_mod = place.namespace()
    total = int(counts.sum())
    idx_dtype = np.int64 if wide_indices or total > _INT32_MAX else np.int32
    keep = xp_mod.arange(k)[None, :] < counts[:, None]  # each row's kept entries come first
    indptr = xp_mod.concatenate([xp_mod.zeros(1, dtype=np.int64), xp_mod.cumsum(counts)]).astype(idx_dtype)
    data, cols = scores[keep], indices[keep].astype(idx_dtype)
    if device_output:
        return device_csr(indptr, cols, data, (m, n))
    return sp.csr_matrix((data, cols, indptr), shape=(m, n))


def similarity_topk_cuda(X: Any, k: int, Y: Any = None, **kwargs: Any):
    """:func:`recforge.kernels.similarity_topk` on the GPU (``backend="cuda"``)."""
    from recforge.kernels.similarity import similarity_topk

    kwargs["backend"] = "cuda"
    return similarity_topk(X, k, Y, **kwargs)


# -- dense_topk ------------------------------------------------------------------------------------

def _unit_rows(x: Any, place: Placement):
    """Rows scaled to unit L2 norm (all-zero rows stay zero), norms taken in float64 as on the CPU."""
    if is_torch(x):
        import torch

        norms = (x.double() ** 2).sum(dim=1).sqrt()
        inv = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-300), torch.zeros_like(norms)).to(x.dtype)
        return (x * inv[:, None]).contiguous()
    if on_device(x):
        from recforge.kernels._cuda_arrays import as_cupy

        x = as_cupy(x)
        cupy = place.namespace()
        norms = cupy.sqrt((x.astype(np.float64) ** 2).sum(axis=1))
        inv = cupy.where(norms > 0, 1.0 / cupy.where(norms > 0, norms, 1.0), 0.0)
        return cupy.ascontiguousarray(x * inv[:, None].astype(x.dtype))
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))  # as the CPU kernel does
    with np.errstate(divide="ignore"):
        inv = np.where(norms > 0, 1.0 / norms, 0.0)
    return np.ascontiguousarray(x * inv[:, None].astype(x.dtype))


def _exclusion(exclude: Any, m: int, n: int):
    """(indptr, indices) int64 of the exclusion pattern, each row's indices sorted and unique;
    host (scipy) or device (cupyx). The stored pattern counts, not the values (as on the CPU)."""
    if exclude is None:
        return None, None
    if is_cupy_sparse(exclude):
        E = exclude.tocsr()
    elif sp.issparse(exclude) and exclude.ndim == 2:
        E = exclude.tocsr()
    else:
        raise TypeError(f"exclude must be a 2-D scipy.sparse (or cupyx) matrix, got {type(exclude).__name__}")
    if E.shape != (m, n):
        raise ValueError(f"exclude must have shape {(m, n)}, got {E.shape}")
    if not E.has_canonical_format:
        E = E.copy()
        E.sum_duplicates()  # sorts the indices; keeps explicitly stored zeros (the pattern)
    return E.indptr.astype(np.int64), E.indices.astype(np.int64)


def dense_topk_cuda(Q: Any, V: Any, k: int, *, exclude: Any = None, metric: str = "dot",
                    memory_budget: int = 0):
    r"""For each row of Q, the k rows of V with the highest score, on the GPU: ``(indices, scores)``.

    Scores: ``dot`` :math:`\langle q_i, v_j \rangle`; ``cosine`` the same on unit rows.
    int64 indices and float32 scores, m x k, best first, ties by smaller index, padded with
    -1 / -inf; ``exclude`` (m x n sparse) lists items a row must never return. Computed in
    float32 (float64 inputs are rounded to float32). Any k.
    """
    k = v.check_positive_int(k, "k")
    if metric not in ("dot", "cosine"):
        raise ValueError(f"metric must be one of ('dot', 'cosine'), got {metric!r}")
    check_dense(Q, "Q")
    check_dense(V, "V")
    if Q.shape[1] != V.shape[1]:
        raise ValueError(f"Q and V must have the same number of columns, got {Q.shape[1]} and {V.shape[1]}")
    if metric == "dot" and Q.shape[1] * _max_abs(Q) * _max_abs(V) >= _FLOAT32_MAX:
        # |<q, v>| <= d max|q| max|v|; the kernel sums in float32 (the CPU kernel's rule).
        raise ValueError("Q and V hold values so large that inner products may overflow float32 scores; "
                         "rescale them (or use metric='cosine')")
    _require_cuda(Q, V, exclude)
    from recforge import _cuda

    place = Placement(Q, V, exclude)
    m, n, d = int(Q.shape[0]), int(V.shape[0]), int(Q.shape[1])
    _check_index_range((m, n, d), "Q or V")
    ex_p, ex_i = _exclusion(exclude, m, n)
    kk = min(k, n)
    xp = place.namespace()
    if m == 0 or n == 0:
        return _padded(xp, place, m, k)
    if metric == "cosine":
        Q, V = _unit_rows(_as_float32(Q), place), _unit_rows(_as_float32(V), place)
    q, vv = place.stage(Q, np.float32), place.stage(V, np.float32)
    sp_, si = place.stage(ex_p, np.int64), place.stage(ex_i, np.int64)
    out_i, out_s = place.empty((m, kk), np.int64), place.empty((m, kk), np.float32)
    _cuda.dense_topk(q.ptr, vv.ptr, m, n, d, kk, sp_.ptr, si.ptr, out_i.ptr, out_s.ptr, place.device,
                     place.stream, scratch_budget(memory_budget))
    indices, scores = place.result(out_i), place.result(out_s)
    if kk < k:
        pad_i, pad_s = _padded(xp, place, m, k - kk)
        indices = xp.concatenate([indices, pad_i], 1) if xp.__name__ != "torch" else xp.cat([indices, pad_i], 1)
        scores = xp.concatenate([scores, pad_s], 1) if xp.__name__ != "torch" else xp.cat([scores, pad_s], 1)
    return indices, scores


def _max_abs(x: Any) -> float:
    """The largest absolute value of a host or device array (0 when it is empty)."""
    if is_torch(x):
        t = x.detach()
        t = t if t.is_floating_point() else t.double()
        return float(t.abs().max()) if t.numel() else 0.0
    if on_device(x):
        from recforge.kernels._cuda_arrays import as_cupy

        a = as_cupy(x)
    else:
        a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return float(abs(a).max()) if a.size else 0.0


def _as_float32(x: Any):
    if is_torch(x):
        return x.float()
    if on_device(x):
        from recforge.kernels._cuda_arrays import as_cupy

        return as_cupy(x).astype(np.float32, copy=False)
    return np.asarray(x, dtype=np.float32)


def _padded(xp, place: Placement, m: int, width: int):
    if xp.__name__ == "torch":
        dev = f"cuda:{place.device}"
        return (xp.full((m, width), -1, dtype=xp.int64, device=dev),
                xp.full((m, width), float("-inf"), dtype=xp.float32, device=dev))
    return xp.full((m, width), -1, dtype=np.int64), xp.full((m, width), -np.inf, dtype=np.float32)


# -- spmm / propagate ------------------------------------------------------------------------------

def _graph_operands(A: Any, X: Any, name_x: str):
    """Validated CSR A (host scipy or cupyx) and dense X, their common float dtype, and shapes."""
    x_dtype = check_dense(X, name_x)
    if is_cupy_sparse(A):
        A = A.tocsr()
        if not A.has_canonical_format:
            A = A.copy()
            A.sum_duplicates()
        a_dtype = np.dtype(np.float64 if A.dtype == np.float64 else np.float32)
        import cupy

        if A.nnz and not bool(cupy.isfinite(A.data).all()):
            raise ValueError("A contains NaN or infinite values")
    else:
        A = v.as_csr(A, "A")
        a_dtype = A.dtype
    dtype = v.common_value_dtype(a_dtype, x_dtype)
    _check_index_range(A.shape, "A")
    return A, dtype


def _stage_csr(place: Placement, A: Any, dtype: np.dtype):
    return place.stage(A.indptr, np.int64), place.stage(A.indices, np.int32), place.stage(A.data, dtype)


def spmm_cuda(A: Any, B: Any):
    """:math:`Y = A B` on the GPU for a sparse A (rows x cols) and a dense B (cols x d)."""
    A, dtype = _graph_operands(A, B, "B")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"A has {A.shape[1]} columns but B has {B.shape[0]} rows")
    _require_cuda(A, B)
    from recforge import _cuda

    place = Placement(A, B)
    rows, d = int(A.shape[0]), int(B.shape[1])
    ap, ai, ad = _stage_csr(place, A, dtype)
    b = place.stage(B, dtype)
    y = place.empty((rows, d), dtype)
    _cuda.spmm(ap.ptr, ai.ptr, ad.ptr, rows, int(A.shape[1]), b.ptr, d, y.ptr, dtype == np.float64,
               place.device, place.stream)
    return place.result(y)


def propagate_cuda(A: Any, E: Any, layers: int, combine: Any = "mean"):
    r"""LightGCN propagation on the GPU: :math:`E_0 = E,\ E_{l+1} = A E_l`, combined as
    :math:`\sum_l w_l E_l` (``mean``: :math:`w_l = 1/(L+1)`, ``sum``: 1, ``last``: only :math:`E_L`,
    or L + 1 explicit weights). A is square (n x n), E is n x d."""
    layers = v.check_int(layers, "layers", 0)
    weights = combine_weights(combine, layers)
    A, dtype = _graph_operands(A, E, "E")
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square for propagate, got shape {A.shape}")
    if A.shape[1] != E.shape[0]:
        raise ValueError(f"A has {A.shape[1]} columns but E has {E.shape[0]} rows")
    _require_cuda(A, E)
    from recforge import _cuda

    place = Placement(A, E)
    rows, d = int(A.shape[0]), int(E.shape[1])
    ap, ai, ad = _stage_csr(place, A, dtype)
    e = place.stage(E, dtype)
    out = place.empty((rows, d), dtype)
    _cuda.propagate(ap.ptr, ai.ptr, ad.ptr, rows, e.ptr, d, weights, out.ptr, dtype == np.float64,
                    place.device, place.stream)
    return place.result(out)


__all__ = ["similarity_core_cuda", "similarity_topk_cuda", "dense_topk_cuda", "spmm_cuda",
           "propagate_cuda"]
