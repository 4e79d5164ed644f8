"""dense_topk: exact top-k retrieval by inner product or cosine, with fused exclusion."""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge import _core
from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _validation as v
from recforge.kernels._cuda_arrays import check_dense, host_array, max_abs

METRICS = ("dot", "cosine")


def dense_topk(Q: Any, V: Any, k: int, *, exclude: Any = None, metric: str = "dot", num_threads: int = 0,
               backend: str = "auto", check_input: bool = True) -> tuple[np.ndarray, np.ndarray]:
    r"""For each row of Q, the k rows of V with the highest score: ``(indices, scores)``.

    Scores: ``dot`` :math:`s_{ij} = \langle q_i, v_j \rangle`; ``cosine``
    :math:`s_{ij} = \langle q_i, v_j \rangle / (\|q_i\| \|v_j\|)` (0 for an all-zero row).

    ``indices`` is int64 m x k and ``scores`` float32 m x k, each row best first, equal scores
    ordered by smaller index. ``exclude`` is an optional m x n sparse matrix whose stored entries
    (whatever their values, as in similarity_topk) are items row i must never return (e.g. the
    items the user has seen); excluded items are skipped inside the selection, so a row is padded
    with index -1 and score -inf only when fewer than k items remain (also when k > n). Q and V
    are float32 (float64 is computed in float64).

    Memory is O(n d + num_threads x block x k): the m x n score matrix is never formed; the
    result itself is m x k (a ValueError names ``k`` when that alone exceeds this machine's memory).
    ``num_threads=0`` uses every core; the GIL is released meanwhile. ``check_input=False`` skips
    the structural check of ``exclude`` (see :func:`recforge.kernels.similarity_topk`).

    The same rules hold on both backends: the arguments are checked here, once
    (:func:`check_dense_arguments`), before the CPU or CUDA core runs.

    V may be a :class:`~recforge.kernels.PreparedDenseItems` (:func:`prepare_dense_items`): V
    cast, normalised and packed once for many calls, with identical results.

    Every score is one microkernel's sum :math:`c \leftarrow \mathrm{fma}(q_c, v_c, c)` over
    :math:`c = 0, \dots, d-1` in order, so a row's result does not depend, to the last bit, on the
    other rows of Q in the same call, on the thread count or on whether V was prepared.
    """
    from recforge.kernels.prepared_dense import PreparedDenseItems, dense_topk_prepared

    if isinstance(V, PreparedDenseItems):
        return dense_topk_prepared(Q, V, k, exclude=exclude, metric=metric, num_threads=num_threads,
                                   backend=backend, check_input=check_input)
    k = v.check_positive_int(k, "k")
    threads = resolve_num_threads(num_threads)
    on_cuda = resolve_backend(backend, Q, V, supported=("cpu", "cuda")) == "cuda"
    check_dense_arguments(Q, V, k, metric, exclude, check_input)
    if on_cuda:
        from recforge.kernels._cuda_dispatch import dense_topk_cuda

        return dense_topk_cuda(Q, V, k, exclude=exclude, metric=metric, checked=True)
    Q, V, ex_indptr, ex_indices = _prepare(Q, V, exclude, metric)
    m, n = Q.shape[0], V.shape[0]
    if m == 0 or n == 0:
        return np.full((m, k), -1, dtype=np.int64), np.full((m, k), -np.inf, dtype=np.float32)
    return _core.dense_topk(Q=Q, V=V, k=min(k, n), out_k=k, ex_indptr=ex_indptr, ex_indices=ex_indices,
                            num_threads=threads)


def check_dense_arguments(Q: Any, V: Any, k: int, metric: str, exclude: Any, check_input: bool = True) -> None:
    r"""Every rule of dense_topk's arguments, for host and device arrays alike (CPU and CUDA paths).

    Q and V: 2-D, real, finite, the same number of columns; for ``metric="dot"`` no float32
    inner product may overflow (:math:`|\langle q, v \rangle| \le d \max|q| \max|v|`); the
    m x k result must fit in memory; ``exclude``: a valid m x n sparse pattern.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    check_dense(Q, "Q")
    check_dense(V, "V")
    Q, V = host_array(Q), host_array(V)
    if Q.shape[1] != V.shape[1]:
        raise ValueError(f"Q and V must have the same number of columns, got {Q.shape[1]} and {V.shape[1]}")
    m, n, d = int(Q.shape[0]), int(V.shape[0]), int(Q.shape[1])
    v.check_result_fits(m * k * 12, "k", f"an m x k = {m} x {k} result")
    if metric == "dot" and m and n and d * max_abs(Q) * max_abs(V) >= v.FLOAT32_MAX:
        raise ValueError("Q and V hold values so large that inner products may overflow float32 scores; "
                         "rescale them (or use metric='cosine')")
    if exclude is not None:
        v.check_pattern(exclude, "exclude", (m, n), check_input)


def _prepare(Q: Any, V: Any, exclude: Any, metric: str):
    """Q, V as C-contiguous host arrays of one dtype (unit rows for cosine) and exclude as int64
    (indptr, indices); the arguments were checked by :func:`check_dense_arguments`."""
    Q = v.as_dense(Q, "Q")
    V = v.as_dense(V, "V")
    dtype = v.common_value_dtype(Q.dtype, V.dtype)
    Q, V = Q.astype(dtype, copy=False), V.astype(dtype, copy=False)
    if metric == "cosine":
        Q, V = _unit_rows(Q), _unit_rows(V)
    ex_indptr = ex_indices = None
    if exclude is not None:
        E = v.as_pattern(exclude, "exclude", (Q.shape[0], V.shape[0]), check_input=False)
        ex_indptr = v.contiguous(E.indptr, np.int64)
        ex_indices = v.contiguous(E.indices, np.int64)
    return Q, V, ex_indptr, ex_indices


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), scaled in float64."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    with np.errstate(divide="ignore"):
        inv = np.where(norms > 0, 1.0 / norms, 0.0)
    return v.contiguous((X * inv[:, None]).astype(X.dtype))
