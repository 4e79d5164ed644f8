"""Graph kernels for LightGCN: normalize_adjacency, spmm and propagate."""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
import scipy.sparse as sp

from recforge import _core
from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _validation as v

COMBINE_MODES = ("mean", "sum", "last")

Combine = Union[str, Sequence[float]]


def normalize_adjacency(R: Any) -> sp.csr_matrix:
    r"""The symmetric-normalised bipartite adjacency of a users x items matrix R.

    :math:`A = D^{-1/2} \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix} D^{-1/2}`, an
    (U + I) x (U + I) CSR with users first, then items; D is the diagonal of row sums (weighted
    degrees), so :math:`a_{u, U+i} = r_{ui} / \sqrt{d_u d_i}`. No self loops; the rows of users or
    items without interactions are empty (never NaN). R's values are weights and must be >= 0
    (stored zeros are dropped). float64 R gives float64 A, anything else float32.
    """
    R = v.as_csr(R, "R")
    if R.nnz and float(R.data.min()) < 0:
        raise ValueError("R must not contain negative values (interaction weights are >= 0)")
    U, I = R.shape
    rows = np.repeat(np.arange(U), np.diff(R.indptr))
    deg_u = np.bincount(rows, weights=R.data, minlength=U)
    deg_i = np.bincount(R.indices, weights=R.data, minlength=I)
    inv_u, inv_i = _inverse_sqrt(deg_u), _inverse_sqrt(deg_i)
    values = (R.data * inv_u[rows] * inv_i[R.indices]).astype(R.dtype)
    top = sp.csr_matrix((values, R.indices, R.indptr), shape=(U, I))
    bottom = v.transpose_csr(top)
    n, nnz = U + I, 2 * R.nnz
    idx = np.int32 if max(n, nnz) <= np.iinfo(np.int32).max else np.int64
    indptr = np.concatenate([top.indptr.astype(idx), (bottom.indptr[1:] + top.nnz).astype(idx)])
    indices = np.concatenate([top.indices.astype(idx) + idx(U), bottom.indices.astype(idx)])
    data = np.concatenate([top.data, bottom.data])
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


def spmm(A: Any, B: Any, *, num_threads: int = 0, backend: str = "auto") -> np.ndarray:
    r"""The product :math:`A B` of a sparse r x c matrix and a dense c x d matrix, as a dense array.

    Row-parallel (each output row written once), vectorised over d. float32 unless A or B is
    float64. ``num_threads=0`` uses every core.
    """
    threads = resolve_num_threads(num_threads)
    if resolve_backend(backend, A, B, supported=("cpu", "cuda")) == "cuda":
        from recforge.kernels._cuda_dispatch import spmm_cuda

        return spmm_cuda(A, B)
    A = v.as_csr(A, "A")
    B = v.as_dense(B, "B")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"A has {A.shape[1]} columns but B has {B.shape[0]} rows")
    A, B = _same_dtype(A, B)
    indptr, indices, data = v.core_arrays(A, v.index_dtype_for(A))
    return _core.spmm(indptr, indices, data, A.shape[0], B, threads)


def propagate(A: Any, E: Any, layers: int, *, combine: Combine = "mean", num_threads: int = 0,
              backend: str = "auto") -> np.ndarray:
    r"""LightGCN propagation: :math:`E_0 = E,\ E_{l+1} = A E_l`, combined over l = 0..layers.

    ``combine``: ``"mean"`` :math:`\frac{1}{L+1}\sum_l E_l` (LightGCN), ``"sum"``
    :math:`\sum_l E_l`, ``"last"`` :math:`E_L`, or a sequence of L + 1 weights
    :math:`\sum_l w_l E_l`. A is a square n x n sparse matrix, E is n x d. The combination is
    applied while each layer's rows are computed (no extra pass); only two n x d buffers are
    used besides the result. float32 unless A or E is float64.
    """
    threads = resolve_num_threads(num_threads)
    on_cuda = resolve_backend(backend, A, E, supported=("cpu", "cuda")) == "cuda"
    layers = v.check_int(layers, "layers", 0)
    weights = combine_weights(combine, layers)
    if on_cuda:
        from recforge.kernels._cuda_dispatch import propagate_cuda

        return propagate_cuda(A, E, layers, weights)
    A = v.as_csr(A, "A")
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square, got shape {A.shape}")
    E = v.as_dense(E, "E")
    if E.shape[0] != A.shape[0]:
        raise ValueError(f"E must have one row per node of A ({A.shape[0]}), got {E.shape[0]}")
    A, E = _same_dtype(A, E)
    indptr, indices, data = v.core_arrays(A, v.index_dtype_for(A))
    return _core.propagate(indptr, indices, data, A.shape[0], E, weights, threads)


def combine_weights(combine: Combine, layers: int) -> list[float]:
    """The per-layer weights w_0..w_L that ``combine`` stands for."""
    if isinstance(combine, str):
        if combine == "mean":
            return [1.0 / (layers + 1)] * (layers + 1)
        if combine == "sum":
            return [1.0] * (layers + 1)
        if combine == "last":
            return [0.0] * layers + [1.0]
        raise ValueError(f"combine must be one of {COMBINE_MODES} or a list of layers + 1 weights, got {combine!r}")
    try:
        weights = np.asarray(combine, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"combine must be one of {COMBINE_MODES} or a list of numbers, got {combine!r}") from None
    if weights.shape != (layers + 1,):
        raise ValueError(f"combine must hold layers + 1 = {layers + 1} weights, got shape {weights.shape}")
    if not np.isfinite(weights).all():
        raise ValueError("combine weights must be finite")
    return [float(w) for w in weights]


def _inverse_sqrt(degrees: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(degrees > 0, 1.0 / np.sqrt(degrees), 0.0)


def _same_dtype(A: sp.csr_matrix, X: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    dtype = v.common_value_dtype(A.dtype, X.dtype)
    return v.with_value_dtype(A, dtype), X.astype(dtype, copy=False)
