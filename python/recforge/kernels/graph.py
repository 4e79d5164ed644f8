"""Graph kernels for LightGCN: normalize_adjacency, spmm and propagate."""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
import scipy.sparse as sp

from recforge import _core
from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _validation as v
from recforge.kernels._cuda_arrays import check_dense, is_cupy_sparse
from recforge.kernels._validation import COMBINE_MODES, combine_weights

Combine = Union[str, Sequence[float]]

__all__ = ["normalize_adjacency", "spmm", "propagate", "combine_weights", "COMBINE_MODES", "Combine"]


def normalize_adjacency(R: Any, *, check_input: bool = True) -> sp.csr_matrix:
    r"""The symmetric-normalised bipartite adjacency of a users x items matrix R.

    :math:`A = D^{-1/2} \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix} D^{-1/2}`, an
    (U + I) x (U + I) CSR with users first, then items; D is the diagonal of row sums (weighted
    degrees), so :math:`a_{u, U+i} = r_{ui} / \sqrt{d_u d_i}`. No self loops; the rows of users or
    items without interactions are empty (never NaN). R's values are weights and must be >= 0
    (stored zeros are dropped). float64 R gives float64 A, anything else float32.
    ``check_input=False`` skips R's structural check (see :func:`similarity_topk`).
    """
    R = v.as_csr(R, "R", check_input)
    v.check_result_fits(16 * (sum(R.shape) + 1), "R", f"the offsets of a {sum(R.shape)}-node adjacency")
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


def spmm(A: Any, B: Any, *, num_threads: int = 0, backend: str = "auto", check_input: bool = True) -> np.ndarray:
    r"""The product :math:`A B` of a sparse r x c matrix and a dense c x d matrix, as a dense array.

    Row-parallel (each output row written once), vectorised over d. float32 unless A or B is
    float64. ``num_threads=0`` uses every core. ``check_input=False`` skips A's structural check
    (see :func:`recforge.kernels.similarity_topk`).
    """
    threads = resolve_num_threads(num_threads)
    on_cuda = resolve_backend(backend, A, B, supported=("cpu", "cuda")) == "cuda"
    check_graph_operands(A, B, "B", square=False, check_input=check_input)
    if on_cuda:
        from recforge.kernels._cuda_dispatch import spmm_cuda

        return spmm_cuda(A, B, checked=True)
    A, B = _host_operands(A, B, "B")
    indptr, indices, data = v.core_arrays(A, v.index_dtype_for(A))
    return _core.spmm(indptr=indptr, indices=indices, data=data, rows=A.shape[0], B=B, num_threads=threads)


def propagate(A: Any, E: Any, layers: int, *, combine: Combine = "mean", num_threads: int = 0,
              backend: str = "auto", check_input: bool = True) -> np.ndarray:
    r"""LightGCN propagation: :math:`E_0 = E,\ E_{l+1} = A E_l`, combined over l = 0..layers.

    ``combine``: ``"mean"`` :math:`\frac{1}{L+1}\sum_l E_l` (LightGCN), ``"sum"``
    :math:`\sum_l E_l`, ``"last"`` :math:`E_L`, or a sequence of L + 1 weights
    :math:`\sum_l w_l E_l`. A is a square n x n sparse matrix, E is n x d. The combination is
    applied while each layer's rows are computed (no extra pass); only two n x d buffers are
    used besides the result. float32 unless A or E is float64. ``check_input=False`` skips A's
    structural check.
    """
    threads = resolve_num_threads(num_threads)
    on_cuda = resolve_backend(backend, A, E, supported=("cpu", "cuda")) == "cuda"
    layers = v.check_int(layers, "layers", 0)
    weights = combine_weights(combine, layers)
    check_graph_operands(A, E, "E", square=True, check_input=check_input)
    if on_cuda:
        from recforge.kernels._cuda_dispatch import propagate_cuda

        return propagate_cuda(A, E, layers, weights, checked=True)
    A, E = _host_operands(A, E, "E")
    indptr, indices, data = v.core_arrays(A, v.index_dtype_for(A))
    return _core.propagate(indptr=indptr, indices=indices, data=data, rows=A.shape[0], E=E, weights=weights,
                           num_threads=threads)


def check_graph_operands(A: Any, X: Any, x_name: str, *, square: bool, check_input: bool = True) -> None:
    """The rules of spmm / propagate for host and device operands alike (CPU and CUDA paths):
    A a 2-D sparse matrix with a valid structure (square for propagate), X a 2-D array of real
    finite numbers with one row per column of A."""
    if is_cupy_sparse(A):
        if check_input:
            v.check_sparse_structure(A, "A")
    else:
        v.as_sparse(A, "A", check_input)
    check_dense(X, x_name)
    if square and A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square, got shape {tuple(A.shape)}")
    v.check_result_fits(8 * int(A.shape[0]) * max(1, int(X.shape[1])), "A", f"a {A.shape[0]} x {X.shape[1]} result")
    if A.shape[1] != X.shape[0]:
        if square:
            raise ValueError(f"{x_name} must have one row per node of A ({A.shape[0]}), got {X.shape[0]}")
        raise ValueError(f"A has {A.shape[1]} columns but {x_name} has {X.shape[0]} rows")


def _host_operands(A: Any, X: Any, x_name: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """Canonical CSR A and C-contiguous X of one float dtype (structure already checked)."""
    A = v.as_csr(A, "A", check_input=False)
    X = v.as_dense(X, x_name)
    dtype = v.common_value_dtype(A.dtype, X.dtype)
    return v.with_value_dtype(A, dtype), X.astype(dtype, copy=False)


def _inverse_sqrt(degrees: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(degrees > 0, 1.0 / np.sqrt(degrees), 0.0)
