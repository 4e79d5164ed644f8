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
from recforge.kernels._cuda_arrays import Placement, check_dense, device_csr, is_cupy_sparse, is_torch, on_device
from recforge.kernels._validation import combine_weights


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


# -- similarity_topk -------------------------------------------------------------------------------

def similarity_core_cuda(X: sp.csr_matrix, Y: sp.csr_matrix, *, kind: int, count: bool, k: int, shrink: float,
                         min_support: float, x_scale, y_scale, x_size, y_size, symmetric: bool,
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
    v.check_index_range((m, n, d), "the similarity operands")
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
        x_indptr=staged["x_indptr"].ptr, x_indices=staged["x_indices"].ptr, x_data=staged["x_data"].ptr, m=m, d=d,
        y_indptr=staged["y_indptr"].ptr, y_indices=staged["y_indices"].ptr, y_data=staged["y_data"].ptr, n=n,
        kind=int(kind), count=bool(count), k=k, shrink=float(shrink), min_support=float(min_support),
        x_scale=staged["x_scale"].ptr, y_scale=staged["y_scale"].ptr, x_size=staged["x_size"].ptr,
        y_size=staged["y_size"].ptr, symmetric=bool(symmetric), f64=value_dtype == np.float64,
        excl_indptr=ex_p.ptr, excl_indices=ex_i.ptr, out_indices=out_i.ptr, out_scores=out_s.ptr,
        out_counts=out_c.ptr, device=place.device, stream=place.stream,
        memory_budget=scratch_budget(memory_budget))
    indices, scores, counts = place.result(out_i), place.result(out_s), place.result(out_c)
    xp_mod = place.namespace()
    total = int(counts.sum())
    idx_dtype = np.int64 if wide_indices or total > v.INT32_MAX else np.int32
    keep = xp_mod.arange(k)[None, :] < counts[:, None]  # each row's kept entries come first
    indptr = xp_mod.concatenate([xp_mod.zeros(1, dtype=np.int64), xp_mod.cumsum(counts)]).astype(idx_dtype)
    data, cols = scores[keep], indices[keep].astype(idx_dtype)
    if device_output:
        return device_csr(indptr, cols, data, (m, n))
    return sp.csr_matrix((data, cols, indptr), shape=(m, n))


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
    E = exclude.tocsr()  # checked by v.check_pattern
    if not E.has_canonical_format:
        E = E.copy()
        E.sum_duplicates()  # sorts the indices; keeps explicitly stored zeros (the pattern)
    return E.indptr.astype(np.int64), E.indices.astype(np.int64)


def dense_topk_cuda(Q: Any, V: Any, k: int, *, exclude: Any = None, metric: str = "dot",
                    memory_budget: int = 0, checked: bool = False):
    r"""For each row of Q, the k rows of V with the highest score, on the GPU: ``(indices, scores)``.

    Scores: ``dot`` :math:`\langle q_i, v_j \rangle`; ``cosine`` the same on unit rows.
    int64 indices and float32 scores, m x k, best first, ties by smaller index, padded with
    -1 / -inf; ``exclude`` (m x n sparse) lists items a row must never return. Computed in
    float32 (float64 inputs are rounded to float32). Any k. The arguments follow the rules of
    :func:`recforge.kernels.dense.check_dense_arguments` (``checked=True``: already checked).
    """
    from recforge.kernels.dense import check_dense_arguments

    k = v.check_positive_int(k, "k")
    if not checked:
        check_dense_arguments(Q, V, k, metric, exclude)
    _require_cuda(Q, V, exclude)
    from recforge import _cuda

    place = Placement(Q, V, exclude)
    m, n, d = int(Q.shape[0]), int(V.shape[0]), int(Q.shape[1])
    v.check_index_range((m, n, d), "Q or V")
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
    _cuda.dense_topk(q=q.ptr, v=vv.ptr, m=m, n=n, d=d, k=kk, excl_indptr=sp_.ptr, excl_indices=si.ptr,
                     out_indices=out_i.ptr, out_scores=out_s.ptr, device=place.device, stream=place.stream,
                     memory_budget=scratch_budget(memory_budget))
    indices, scores = place.result(out_i), place.result(out_s)
    if kk < k:
        pad_i, pad_s = _padded(xp, place, m, k - kk)
        indices = xp.concatenate([indices, pad_i], 1) if xp.__name__ != "torch" else xp.cat([indices, pad_i], 1)
        scores = xp.concatenate([scores, pad_s], 1) if xp.__name__ != "torch" else xp.cat([scores, pad_s], 1)
    return indices, scores


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
    """Canonical CSR A (host scipy or cupyx) and the common float dtype of A and X (the rules
    were checked by :func:`recforge.kernels.graph.check_graph_operands`)."""
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
        A = v.as_csr(A, "A", check_input=False)
        a_dtype = A.dtype
    dtype = v.common_value_dtype(a_dtype, x_dtype)
    v.check_index_range(A.shape, "A")
    return A, dtype


def _run_graph_kernel(A: Any, X: Any, name_x: str, weights: list[float] | None):
    """spmm (weights None) or propagate on the GPU, for checked operands."""
    A, dtype = _graph_operands(A, X, name_x)
    _require_cuda(A, X)
    from recforge import _cuda

    place = Placement(A, X)
    rows, d = int(A.shape[0]), int(X.shape[1])
    ap, ai = place.stage(A.indptr, np.int64), place.stage(A.indices, np.int32)
    ad, x = place.stage(A.data, dtype), place.stage(X, dtype)
    out = place.empty((rows, d), dtype)
    csr = dict(indptr=ap.ptr, indices=ai.ptr, data=ad.ptr, rows=rows, d=d, f64=dtype == np.float64,
               device=place.device, stream=place.stream)
    if weights is None:
        _cuda.spmm(**csr, cols=int(A.shape[1]), b=x.ptr, y=out.ptr)
    else:
        _cuda.propagate(**csr, e=x.ptr, weights=weights, out=out.ptr)
    return place.result(out)


def spmm_cuda(A: Any, B: Any, *, checked: bool = False):
    """:math:`Y = A B` on the GPU for a sparse A (rows x cols) and a dense B (cols x d)."""
    if not checked:
        from recforge.kernels.graph import check_graph_operands

        check_graph_operands(A, B, "B", square=False)
    return _run_graph_kernel(A, B, "B", None)


def propagate_cuda(A: Any, E: Any, layers: int, combine: Any = "mean", *, checked: bool = False):
    r"""LightGCN propagation on the GPU: :math:`E_0 = E,\ E_{l+1} = A E_l`, combined as
    :math:`\sum_l w_l E_l` (``mean``: :math:`w_l = 1/(L+1)`, ``sum``: 1, ``last``: only :math:`E_L`,
    or L + 1 explicit weights). A is square (n x n), E is n x d."""
    layers = v.check_int(layers, "layers", 0)
    weights = combine_weights(combine, layers)
    if not checked:
        from recforge.kernels.graph import check_graph_operands

        check_graph_operands(A, E, "E", square=True)
    return _run_graph_kernel(A, E, "E", weights)


__all__ = ["similarity_core_cuda", "dense_topk_cuda", "spmm_cuda", "propagate_cuda"]
