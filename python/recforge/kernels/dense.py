"""dense_topk: exact top-k retrieval by inner product or cosine, with fused exclusion."""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge import _core
from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _validation as v

METRICS = ("dot", "cosine")

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def dense_topk(Q: Any, V: Any, k: int, *, exclude: Any = None, metric: str = "dot", num_threads: int = 0,
               backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    r"""For each row of Q, the k rows of V with the highest score: ``(indices, scores)``.

    Scores: ``dot`` :math:`s_{ij} = \langle q_i, v_j \rangle`; ``cosine``
    :math:`s_{ij} = \langle q_i, v_j \rangle / (\|q_i\| \|v_j\|)` (0 for an all-zero row).

    ``indices`` is int64 m x k and ``scores`` float32 m x k, each row best first, equal scores
    ordered by smaller index. ``exclude`` is an optional m x n sparse matrix whose stored entries
    (whatever their values, as in similarity_topk) are items row i must never return (e.g. the
    items the user has seen); excluded items are skipped inside the selection, so a row is padded
    with index -1 and score -inf only when fewer than k items remain (also when k > n). Q and V
    are float32 (float64 is computed in float64).

    Memory is O(n d + num_threads x block x k): the m x n score matrix is never formed.
    ``num_threads=0`` uses every core; the GIL is released meanwhile.
    """
    k = v.check_positive_int(k, "k")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    threads = resolve_num_threads(num_threads)
    if resolve_backend(backend, Q, V, supported=("cpu", "cuda")) == "cuda":
        from recforge.kernels._cuda_dispatch import dense_topk_cuda

        return dense_topk_cuda(Q, V, k, exclude=exclude, metric=metric)
    Q, V, ex_indptr, ex_indices = _prepare(Q, V, exclude, metric)
    m, n = Q.shape[0], V.shape[0]
    if m == 0 or n == 0:
        return np.full((m, k), -1, dtype=np.int64), np.full((m, k), -np.inf, dtype=np.float32)
    return _core.dense_topk(Q, V, min(k, n), k, ex_indptr, ex_indices, threads)


def _prepare(Q: Any, V: Any, exclude: Any, metric: str):
    """Validated Q, V (one dtype; unit rows for cosine) and exclude as int64 (indptr, indices)."""
    Q = v.as_dense(Q, "Q")
    V = v.as_dense(V, "V")
    if Q.shape[1] != V.shape[1]:
        raise ValueError(f"Q and V must have the same number of columns, got {Q.shape[1]} and {V.shape[1]}")
    dtype = v.common_value_dtype(Q.dtype, V.dtype)
    Q, V = Q.astype(dtype, copy=False), V.astype(dtype, copy=False)
    if metric == "cosine":
        Q, V = _unit_rows(Q), _unit_rows(V)
    elif Q.size and V.size and Q.shape[1] * _max_abs(Q) * _max_abs(V) >= _FLOAT32_MAX:
        # |<q, v>| <= d max|q| max|v|: below float32's largest value no score can overflow.
        raise ValueError("Q and V hold values so large that inner products may overflow float32 scores; "
                         "rescale them (or use metric='cosine')")
    ex_indptr = ex_indices = None
    if exclude is not None:
        E = v.as_pattern(exclude, "exclude", (Q.shape[0], V.shape[0]))
        ex_indptr = np.ascontiguousarray(E.indptr, dtype=np.int64)
        ex_indices = np.ascontiguousarray(E.indices, dtype=np.int64)
    return Q, V, ex_indptr, ex_indices


def _max_abs(X: np.ndarray) -> float:
    return max(float(X.max()), -float(X.min()))


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), scaled in float64."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    with np.errstate(divide="ignore"):
        inv = np.where(norms > 0, 1.0 / norms, 0.0)
    return np.ascontiguousarray((X * inv[:, None]).astype(X.dtype))
