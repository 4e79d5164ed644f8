"""prepare_candidates: Y prepared once for many similarity_topk calls against it."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _validation as v
from recforge.kernels import similarity as s

# Metrics whose statistics for X's rows need X together with Y: not preparable.
JOINT_METRICS = ("adjusted_cosine",)


class PreparedCandidates:
    """Y as :func:`recforge.kernels.similarity_topk` derives it on every call, derived once.

    Holds, for one metric: Y's reweighted values (``tfidf``/``bm25``, with the corpus's idf and
    mean row length), its per-row scales (1/norm) or sizes, its transpose's core arrays (indices
    narrowed to uint16 when n <= 65535, values dropped when all 1) and the float32 overflow bound's
    share. Immutable: build a new one when Y changes. Pass it as ``Y=`` with the same ``metric``.
    """

    __slots__ = ("metric", "shape", "dtype", "source", "kind", "y_scale", "y_size", "idf", "avg_len",
                 "overflow_parts", "_fits_int32", "_arrays", "_wide")

    def __init__(self, source: sp.csr_matrix, metric: str, num_threads: int) -> None:
        self.metric, self.shape, self.dtype, self.source = metric, source.shape, source.dtype, source
        self.kind = self.y_scale = self.y_size = self.idf = self._arrays = self._wide = None
        self.avg_len, self.overflow_parts, self._fits_int32 = 0.0, (0.0, 0), False
        n, d = source.shape
        # Nothing to prepare (empty), or so many declared columns that similarity_topk would compact
        # them per call (with X's columns too): such calls take the plain path on the source.
        if n == 0 or source.nnz == 0 or d > 4 * source.nnz + 1024:
            return
        Y = source
        if metric in ("tfidf", "bm25"):
            s.check_weightable(metric, Y, "Y")
            self.idf, self.avg_len = s.corpus_statistics(metric, Y)
            Y = s.weigh_rows(metric, Y, self.idf, self.avg_len)
        self.kind, self.y_scale, self.y_size = _own_terms(metric, Y, resolve_num_threads(num_threads))
        self.overflow_parts = s.overflow_parts(Y)
        Yt = v.transpose_csr(Y)
        self._fits_int32 = max(Yt.shape) <= v.INT32_MAX and Yt.nnz <= v.INT32_MAX
        self._arrays = s.candidate_arrays(Yt, n, self.kind, np.dtype(np.int32 if self._fits_int32 else np.int64))

    @property
    def prepared(self) -> bool:
        """False when calls fall back to the plain path (empty Y, or columns mostly unused)."""
        return self._arrays is not None

    def index_dtype(self, X: sp.csr_matrix, exclude: sp.csr_matrix | None) -> np.dtype:
        """The core's index dtype for this call, as similarity_topk picks it for X, Y's transpose, exclude."""
        idx = v.index_dtype_for(X, *([] if exclude is None else [exclude]))
        return idx if self._fits_int32 else np.dtype(np.int64)

    def arrays(self, idx: np.dtype):
        """The transposed operand's core arrays with index dtype ``idx`` (int64 ones widened once)."""
        if idx == np.int32 or not self._fits_int32:
            return self._arrays
        if self._wide is None:
            tp, ti, values = self._arrays
            self._wide = (tp.astype(np.int64), ti if ti.dtype == np.uint16 else ti.astype(np.int64), values)
        return self._wide

    def __repr__(self) -> str:
        return f"PreparedCandidates(shape={self.shape}, metric={self.metric!r}, dtype={self.dtype})"


def prepare_candidates(Y: Any, *, metric: str = "cosine", num_threads: int = 0,
                       check_input: bool = True) -> PreparedCandidates:
    """Y (n x d, sparse) prepared once for :func:`similarity_topk` calls with ``Y=`` it and ``metric``.

    Results are identical bit for bit to passing Y itself; each call then does only its query
    rows' work (no transpose of Y, no per-row statistics of Y). ``tfidf``/``bm25`` take their
    corpus statistics (N, df, mean row length) from Y, as similarity_topk does.
    ``adjusted_cosine`` centres columns over X and Y together, so it cannot be prepared
    (ValueError). A call whose X is float64 against a float32 Y (or that needs the GPU or a
    float64 fallback against float32 overflow) takes the plain path on Y, with the same result.
    """
    if metric not in s.METRICS:
        raise ValueError(f"metric must be one of {s.METRICS}, got {metric!r}")
    if metric in JOINT_METRICS:
        raise ValueError(f"metric={metric!r} takes statistics from X and Y jointly, so Y cannot be prepared "
                         "alone: pass the matrix to similarity_topk")
    return PreparedCandidates(v.as_csr(Y, "Y", check_input), metric, num_threads)


def _own_terms(metric: str, Y: sp.csr_matrix, threads: int):
    """(kernel kind, scales, sizes) of one operand for the metric, as similarity._prepare gives them."""
    if metric in ("dot", "pearson", "msd"):
        return {"dot": s.Kind.dot, "pearson": s.Kind.pearson, "msd": s.Kind.msd}[metric], None, None
    if metric == "jaccard":
        return s.Kind.jaccard, None, np.diff(Y.indptr).astype(np.int64)
    return s.Kind.dot, s._inverse_norms(Y, threads), None


def similarity_topk_prepared(X: Any, k: int, P: PreparedCandidates, *, metric: str, shrink: float,
                             min_support: int, exclude: Any, num_threads: int, backend: str,
                             check_input: bool) -> sp.csr_matrix:
    """similarity_topk(X, k, Y) for Y prepared as P: the same checks, steps and result."""
    def plain():
        return s.similarity_topk(X, k, P.source, metric=metric, shrink=shrink, min_support=min_support,
                                 exclude=exclude, num_threads=num_threads, backend=backend, check_input=check_input)

    if metric != P.metric:
        raise ValueError(f"Y was prepared for metric={P.metric!r}, but metric={metric!r} was asked")
    if not P.prepared or resolve_backend(backend, X, None, supported=("cpu", "cuda")) != "cpu":
        return plain()
    k = v.check_positive_int(k, "k")
    shrink = v.check_non_negative_float(shrink, "shrink")
    min_support = v.check_positive_int(min_support, "min_support")
    threads = resolve_num_threads(num_threads)
    X = v.as_csr(X, "X", check_input)
    n, d = P.shape
    if X.shape[1] != d:
        raise ValueError(f"X and Y must have the same number of columns, got {X.shape[1]} and {d}")
    if v.common_value_dtype(X.dtype, P.dtype) != P.dtype:
        return plain()     # Y's statistics would be computed in X's wider dtype
    X = v.with_value_dtype(X, P.dtype)
    m = X.shape[0]
    if exclude is not None:
        exclude = v.as_pattern(exclude, "exclude", (m, n), check_input)
    v.check_result_fits(40 * (m + 1) + 24 * threads * n, "X", f"per-row and per-column buffers for {m} x {n}")
    if m == 0 or X.nnz == 0:
        return sp.csr_matrix((m, n), dtype=X.dtype)
    if P.idf is not None:
        s.check_weightable(metric, X, "X")
        X = s.weigh_rows(metric, X, P.idf, P.avg_len)
    ex_arrays = None if exclude is None else (exclude.indptr, exclude.indices)
    found = run_prepared((X.indptr, X.indices, X.data), m, k, P, metric, shrink, min_support, ex_arrays,
                         P.index_dtype(X, exclude), threads)
    if found is None:
        return plain()     # raises, or computes in float64, as the plain call does
    indptr, indices, data = found
    result = sp.csr_matrix((data, indices, indptr), shape=(m, n))
    return result if result.dtype == P.dtype else result.astype(P.dtype)


def run_prepared(x_arrays: tuple, m: int, k: int, P: PreparedCandidates, metric: str, shrink: float,
                 min_support: int, ex_arrays: tuple | None, idx: np.dtype, threads: int):
    """The prepared path's own steps on canonical CSR arrays of X (in P's dtype, reweighted for
    tfidf/bm25) and of ``exclude``'s pattern: X's row terms, the float32 overflow test, the core
    call with index dtype ``idx``. Returns the result's (indptr, indices, data), or None where the
    overflow bound sends the call to the plain path. Shared by :func:`similarity_topk_prepared`
    and :func:`recforge.kernels.prepared_rows.similarity_topk_rows`."""
    xp, xi, xd = x_arrays
    n, d = P.shape
    kind, x_scale, x_size = _own_terms(metric, SimpleNamespace(indptr=xp, data=xd, dtype=xd.dtype), threads)
    if xd.dtype == np.float32 and kind == s.Kind.dot and s.bound_exceeds_float32(s.overflow_parts_of(xp, xd),
                                                                                  P.overflow_parts):
        return None
    count = kind == s.Kind.dot and (shrink > 0 or min_support > 1)
    core_x = (v.contiguous(xp, idx), v.contiguous(xi, idx), v.contiguous(xd))
    ep, ei = (None, None) if ex_arrays is None else (v.contiguous(ex_arrays[0], idx), v.contiguous(ex_arrays[1], idx))
    return s.core_call(core_x, m, d, P.arrays(idx), n, kind, count, min(k, n), shrink, min_support, x_scale,
                       P.y_scale, x_size, P.y_size, False, False, ep, ei, threads)
