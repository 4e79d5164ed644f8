"""similarity_topk_rows: a few trusted rows against PreparedCandidates, on raw CSR arrays.

The per-request path of a recommender that keeps its data canonical: no scipy matrix is built,
no structure re-checked. The caller promises what :func:`recforge.kernels.similarity_topk`
would otherwise establish for X and ``exclude``: ``indptr`` starting at 0 and non-decreasing,
sorted duplicate-free indices in [0, d), finite non-zero values. Under that promise the
result is the one ``similarity_topk(csr(X), k, P, metric=..., exclude=csr(E))`` gives, bit
for bit (the same core, on the same arrays); where that call would take another road (a
float64 fallback against float32 overflow, the GPU, Y not prepared, tfidf/bm25 reweighting of
X, X's values in another dtype than Y's) this function returns None and the caller makes that
call instead.
"""
from __future__ import annotations

import numpy as np

from recforge.backend import THREADS_PER_PROCESSOR_CAP, resolve_backend, resolve_num_threads
from recforge.kernels._validation import INT32_MAX
from recforge.kernels.prepared import PreparedCandidates, run_prepared


def similarity_topk_rows(x_indptr: np.ndarray, x_indices: np.ndarray, x_data: np.ndarray, k: int,
                         P: PreparedCandidates, *, metric: str, shrink: float = 0.0, min_support: int = 1,
                         ex_indptr: np.ndarray | None = None, ex_indices: np.ndarray | None = None,
                         num_threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(indptr, indices, data) of ``similarity_topk(X, k, P, ...)`` for the m = len(x_indptr) - 1
    rows of X given as arrays (and ``exclude`` as the pattern ex_indptr/ex_indices), or None
    when the general call must be made (see the module docstring). ``k``, ``shrink`` and
    ``min_support`` are taken as valid (k >= 1)."""
    if metric != P.metric or not P.prepared or P.idf is not None or x_data.dtype != P.dtype:
        return None
    if resolve_backend("auto", supported=("cpu", "cuda")) != "cpu":
        return None
    m = x_indptr.shape[0] - 1
    d = P.shape[1]
    nnz = int(x_indptr[-1])
    if m <= 0 or nnz == 0:
        return None           # the general call's empty result, completed there
    # a small explicit count is never capped: skip asking OpenMP for the processors
    threads = num_threads if 0 < num_threads <= THREADS_PER_PROCESSOR_CAP else resolve_num_threads(num_threads)
    ex_nnz = 0 if ex_indices is None else ex_indices.shape[0]
    idx = np.dtype(np.int32 if P._fits_int32 and max(m, d, nnz, ex_nnz) <= INT32_MAX else np.int64)
    return run_prepared((x_indptr, x_indices, x_data), m, int(k), P, metric, float(shrink), int(min_support),
                        None if ex_indptr is None else (ex_indptr, ex_indices), idx, threads)
