"""similarity_topk: for each row of X, the k most similar rows of Y (exact, sparse)."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge import _core
from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _cuda_arrays
from recforge.kernels import _validation as v

METRICS = ("dot", "cosine", "jaccard", "pearson", "msd", "adjusted_cosine", "bm25", "tfidf")

# Kernel kinds of the compiled core, from the one enum it exports (recforge/similarity.hpp: Kind).
Kind = _core.SimilarityKind

# Bytes the half product may spend on per-thread row buffers before it shares one set of
# locked buffers between threads instead.
HALF_PRODUCT_PRIVATE_BUDGET = 512 << 20

BM25_K1 = 1.2
BM25_B = 0.75


def similarity_topk(X: Any, k: int, Y: Any = None, *, metric: str = "cosine", shrink: float = 0.0,
                    min_support: int = 1, exclude: Any = None, num_threads: int = 0,
                    backend: str = "auto", check_input: bool = True,
                    pair_rows: tuple[int, int] | None = None) -> sp.csr_matrix:
    r"""For each row of X, the k rows of Y with the highest similarity, as a sparse m x n CSR.

    Row i of the result holds at most k entries, stored best first (ties: smaller column
    first). Pairs whose similarity is exactly 0 (e.g. nothing in common) are never returned;
    negative similarities are returned when they are among the k best. ``Y=None`` compares
    the rows of X with each other and never returns a row as its own neighbour. ``k`` larger
    than n returns every non-zero neighbour. Stored zeros count as missing entries.

    Metrics (x, y rows of X and Y; C = dimensions where both are stored, n = |C|):

    - ``dot``: :math:`\sum_c x_c y_c`
    - ``cosine``: :math:`x \cdot y / (\|x\| \|y\|)`
    - ``jaccard``: :math:`|x \cap y| / |x \cup y|` on the pattern of stored entries
    - ``pearson`` (Surprise): :math:`(n\sum xy - \sum x \sum y) /
      \sqrt{(n\sum x^2 - (\sum x)^2)(n\sum y^2 - (\sum y)^2)}`, sums over C; 0 when the
      denominator is 0
    - ``msd`` (Surprise): :math:`1 / (\frac{1}{n}\sum_C (x_c - y_c)^2 + 1)`
    - ``adjusted_cosine``: cosine after subtracting from every stored value the mean of the
      stored values of its column (over X, and Y when given); for item-item similarity on an
      item x user matrix that is each user's mean rating
    - ``tfidf``: cosine of :math:`\sqrt{v}\,\mathrm{idf}_c` with
      :math:`\mathrm{idf}_c = \log N - \log(1 + \mathrm{df}_c)` (implicit's weighting)
    - ``bm25``: cosine of :math:`v (K_1 + 1) / (K_1 L_r + v)\,\mathrm{idf}_c` with
      :math:`L_r = 1 - B + B\,|r| / \overline{|r|}`, :math:`K_1 = 1.2, B = 0.75` (implicit's
      BM25Recommender parameters; implicit then takes the plain dot product, recforge the cosine)

    For ``tfidf``/``bm25`` the rows are documents and the columns terms; N, df and the mean
    row length come from Y (the corpus), or X when Y is None.

    ``Y`` may be a :class:`~recforge.kernels.PreparedCandidates` from
    :func:`~recforge.kernels.prepare_candidates` (same ``metric``): the same result, bit for bit,
    without deriving Y's transpose and statistics on every call.

    ``pair_rows=(r0, r1)`` (Y=None, CPU only): one shard of the half product. Only the pairs
    (i, j) with r0 <= i < r1 and j > i are formed, and every row (all m of them) gets its best k
    among the pairs it is in. For shards whose ranges partition [0, m), merging the rows (best
    first, ties smaller column first, the first k kept) gives the ``pair_rows=None`` result bit
    for bit: recforge.distributed shards ``Y=None`` this way.

    ``exclude``: optional m x n sparse matrix; row i never returns a column stored in row i
    of ``exclude`` (e.g. the items a user has seen when X holds users and Y item profiles).

    ``min_support``: pairs with fewer than this many co-stored dimensions score 0 (are dropped).
    ``shrink``: Koren's shrinkage :math:`s \cdot n / (n + \mathrm{shrink})` on top of any metric.

    Memory is O(num_threads x n + output): neither a dense m x n matrix nor the full sparse
    product is ever formed. With Y=None and a product whose multiply-adds far exceed the pairs
    it yields, each pair is formed once and offered to both rows; each thread then keeps its
    own 2k-entry buffer per row (merged at the end) while that fits
    ``HALF_PRODUCT_PRIVATE_BUDGET`` bytes, else the threads share one set of locked buffers.
    ``num_threads=0`` uses every core; the GIL is released meanwhile. Results do not depend on
    the thread count. Returns float32 scores, or float64 when X or Y is float64. ``k`` above n
    is capped at n, and the result rows take memory for what they hold, not for k.

    float32 inputs whose products could overflow float32 (bound: max|x| max|y| times the longest
    row) are computed in float64 and the scores returned as float32 for the normalised metrics;
    ``metric="dot"`` raises ValueError for them, since such scores are not representable.

    ``check_input=False`` skips the O(nnz) structural check of X, Y and ``exclude`` (monotone
    ``indptr`` starting at 0, indices within range): for callers that built or validated the
    matrices themselves. A malformed matrix may then crash the process.

    ``backend="cuda"`` (or ``"auto"`` with cupyx inputs or ``RECFORGE_BACKEND=cuda``) runs the
    same computation on the GPU in row tiles (memory: a tile of dense similarities); cupyx
    sparse inputs give a cupyx CSR result. Scores then agree with the CPU's up to the order of
    floating-point additions (exactly for 0/1 data).
    """
    from recforge.kernels.prepared import PreparedCandidates, similarity_topk_prepared

    if isinstance(Y, PreparedCandidates):
        if pair_rows is not None:
            raise ValueError("pair_rows needs Y=None (a shard of the half product of X with itself)")
        return similarity_topk_prepared(X, k, Y, metric=metric, shrink=shrink, min_support=min_support,
                                        exclude=exclude, num_threads=num_threads, backend=backend,
                                        check_input=check_input)
    k = v.check_positive_int(k, "k")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    shrink = v.check_non_negative_float(shrink, "shrink")
    min_support = v.check_positive_int(min_support, "min_support")
    threads = resolve_num_threads(num_threads)
    chosen = resolve_backend(backend, X, Y, supported=("cpu", "cuda"))
    device_output = chosen == "cuda" and (_cuda_arrays.is_cupy_sparse(X) or _cuda_arrays.is_cupy_sparse(Y))
    if device_output:  # operands are prepared on the host, as for the CPU core
        X, Y = _cuda_arrays.to_host_csr(X), _cuda_arrays.to_host_csr(Y)

    X = v.as_csr(X, "X", check_input)
    symmetric = Y is None
    if pair_rows is not None:
        pair_rows = _check_pair_rows(pair_rows, X.shape[0], symmetric, chosen)
    if not symmetric:
        Y = v.as_csr(Y, "Y", check_input)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"X and Y must have the same number of columns, got {X.shape[1]} and {Y.shape[1]}")
        dtype = v.common_value_dtype(X.dtype, Y.dtype)
        X, Y = v.with_value_dtype(X, dtype), v.with_value_dtype(Y, dtype)
    m = X.shape[0]
    n = m if symmetric else Y.shape[0]
    if exclude is not None:
        exclude = v.as_pattern(exclude, "exclude", (m, n), check_input)
    # per-row bookkeeping (offsets, counts, scales) and each thread's O(n) accumulator
    v.check_result_fits(40 * (m + 1) + 24 * threads * n, "X", f"per-row and per-column buffers for {m} x {n}")
    if m == 0 or n == 0 or X.nnz == 0 or (not symmetric and Y.nnz == 0):
        empty = sp.csr_matrix((m, n), dtype=X.dtype)
        if device_output:
            import cupyx.scipy.sparse as csp

            return csp.csr_matrix(empty)
        return empty

    X, Y = _drop_empty_columns(X, Y)
    out_dtype = X.dtype
    X, Y, kind, x_scale, y_scale, x_size, y_size = _prepare(metric, X, Y, threads)
    if out_dtype == np.float32 and kind == Kind.dot and _may_overflow_float32(X, Y):
        if x_scale is None:
            raise ValueError("X and Y hold values so large that dot products may overflow float32 scores; "
                             "rescale them, pass float64 matrices, or use a normalised metric such as 'cosine'")
        X, Y = X.astype(np.float64), (None if Y is None else Y.astype(np.float64))
        x_scale, y_scale = x_scale.astype(np.float64), y_scale.astype(np.float64)
    count = kind == Kind.dot and (shrink > 0 or min_support > 1)
    corpus = X if Y is None else Y
    k = min(k, n)
    if chosen == "cuda":  # Y is transposed on the device
        from recforge.kernels._cuda_dispatch import similarity_core_cuda

        result = similarity_core_cuda(
            X, corpus, kind=kind, count=count, k=k, shrink=shrink, min_support=float(min_support),
            x_scale=x_scale, y_scale=y_scale, x_size=x_size, y_size=y_size, symmetric=symmetric,
            use_values=kind != Kind.jaccard, exclude=exclude, device_output=device_output,
            wide_indices=v.index_dtype_for(X, corpus, *([] if exclude is None else [exclude])) == np.int64)
    else:
        result = _similarity_core_cpu(X, corpus, kind, count, k, shrink, min_support, x_scale, y_scale,
                                      x_size, y_size, symmetric, exclude, threads, pair_rows)
    return result if result.dtype == out_dtype else result.astype(out_dtype)


def _similarity_core_cpu(X, corpus, kind, count, k, shrink, min_support, x_scale, y_scale, x_size, y_size,
                         symmetric, exclude, threads, pair_rows=None) -> sp.csr_matrix:
    """The compiled CPU core on prepared operands (Y is transposed here)."""
    Yt = v.transpose_csr(corpus)
    half = symmetric and (pair_rows is not None or _half_product_pays(X, np.diff(Yt.indptr), threads))
    idx = v.index_dtype_for(X, Yt, *([] if exclude is None else [exclude]))
    return run_core(X, candidate_arrays(Yt, corpus.shape[0], kind, idx), corpus.shape[0], kind, count, k, shrink,
                    min_support, x_scale, y_scale, x_size, y_size, symmetric, half, exclude, idx, threads,
                    pair_rows)


def _check_pair_rows(pair_rows, m: int, symmetric: bool, backend: str) -> tuple[int, int]:
    if not symmetric:
        raise ValueError("pair_rows needs Y=None (a shard of the half product of X with itself)")
    if backend != "cpu":
        raise ValueError("pair_rows runs on the CPU backend only")
    if not isinstance(pair_rows, (tuple, list)) or len(pair_rows) != 2:
        raise ValueError(f"pair_rows must be a pair (r0, r1), got {pair_rows!r}")
    r0, r1 = (v.check_int(r, "pair_rows", 0) for r in pair_rows)
    if not r0 <= r1 <= m:
        raise ValueError(f"pair_rows must satisfy 0 <= r0 <= r1 <= m = {m}, got {pair_rows!r}")
    return r0, r1


def candidate_arrays(Yt: sp.csr_matrix, n: int, kind, idx: np.dtype):
    """(indptr, indices, values or None) of the transposed candidates, as the core streams them.

    The product streams Yt once per row of X: its columns are narrowed to uint16 where n allows,
    and its values dropped when they are all 1 (binary interactions), halving the traffic or more.
    """
    tp, ti, td = v.core_arrays(Yt, idx)
    if n <= np.iinfo(np.uint16).max:
        ti = ti.astype(np.uint16)
    yt_values = None if (kind == Kind.jaccard or (td.size and np.all(td == 1))) else td
    return tp, ti, yt_values


def run_core(X, yt_arrays, n, kind, count, k, shrink, min_support, x_scale, y_scale, x_size, y_size,
             symmetric, half, exclude, idx, threads, pair_rows=None) -> sp.csr_matrix:
    """One call of the compiled core on X and the transposed candidates' arrays."""
    m, d = X.shape
    ep, ei = (None, None) if exclude is None else v.core_arrays(exclude, idx)[:2]
    indptr, indices, data = core_call(v.core_arrays(X, idx), m, d, yt_arrays, n, kind, count, k, shrink,
                                      min_support, x_scale, y_scale, x_size, y_size, symmetric, half, ep, ei,
                                      threads, pair_rows)
    return sp.csr_matrix((data, indices, indptr), shape=(m, n))


def core_call(x_arrays, m, d, yt_arrays, n, kind, count, k, shrink, min_support, x_scale, y_scale, x_size, y_size,
              symmetric, half, ex_indptr, ex_indices, threads, pair_rows=None):
    """The compiled core on raw arrays (one index dtype throughout): the result's (indptr, indices, data)."""
    xp, xi, xd = x_arrays
    # arrays shipped between processes (a prepared operand unpickled by Dask) may be misaligned
    tp, ti, yt_values, x_scale, y_scale, x_size, y_size = (
        None if a is None else v.contiguous(a) for a in (*yt_arrays, x_scale, y_scale, x_size, y_size))
    return _core.similarity_topk(
        x_indptr=xp, x_indices=xi, x_data=xd, m=m, d=d, yt_indptr=tp, yt_indices=ti, yt_data=yt_values, n=n,
        kind=kind, count=count, k=k, shrink=shrink, min_support=float(min_support),
        x_scale=x_scale, y_scale=y_scale, x_size=x_size, y_size=y_size,
        symmetric=half, exclude_self=symmetric and not half, ex_indptr=ex_indptr, ex_indices=ex_indices,
        num_threads=threads, private_budget=HALF_PRODUCT_PRIVATE_BUDGET,
        **({} if pair_rows is None else {"pair_rows_begin": pair_rows[0], "pair_rows_end": pair_rows[1]}))


def _drop_empty_columns(X: sp.csr_matrix, Y: sp.csr_matrix | None):
    """X and Y without the columns neither uses, when those are most of them.

    Columns stored nowhere add nothing to any metric (their per-column statistics are empty),
    but the transposed operand would hold an offset per column: a matrix of a few entries
    declaring 2**31 columns would otherwise cost gigabytes.
    """
    d = X.shape[1]
    nnz = X.nnz + (0 if Y is None else Y.nnz)
    if d <= 4 * nnz + 1024:
        return X, Y
    parts = [X] if Y is None else [X, Y]
    used = np.unique(np.concatenate([P.indices[:P.nnz] for P in parts]))
    idx = np.int32 if max(used.size, nnz) <= v.INT32_MAX else np.int64

    def compact(P: sp.csr_matrix) -> sp.csr_matrix:
        cols = np.searchsorted(used, P.indices[:P.nnz]).astype(idx)
        C = sp.csr_matrix((P.data[:P.nnz], cols, P.indptr.astype(idx)), shape=(P.shape[0], used.size))
        C.has_canonical_format = True  # the order of the columns is kept
        return C

    return compact(X), (None if Y is None else compact(Y))


def _may_overflow_float32(X: sp.csr_matrix, Y: sp.csr_matrix | None) -> bool:
    r"""Whether some float32 partial sum of x . y could exceed float32's range.

    :math:`|\sum_{c \le t} x_c y_c| \le \max|x| \max|y| \min(|x|_0, |y|_0)` for every prefix t.
    """
    return bound_exceeds_float32(overflow_parts(X), overflow_parts(X if Y is None else Y))


def overflow_parts(P: sp.csr_matrix) -> tuple[float, int]:
    """(max |value|, longest row) of P: its share of the float32 overflow bound."""
    return overflow_parts_of(P.indptr, P.data[:P.nnz])


def overflow_parts_of(indptr: np.ndarray, data: np.ndarray) -> tuple[float, int]:
    """:func:`overflow_parts` of the CSR arrays ``indptr`` and ``data`` (its stored values)."""
    max_abs = max(float(data.max()), -float(data.min())) if data.size else 0.0
    longest_row = int(np.diff(indptr).max()) if indptr.shape[0] > 1 else 0
    return max_abs, longest_row


def bound_exceeds_float32(x_parts: tuple[float, int], y_parts: tuple[float, int]) -> bool:
    return x_parts[0] * y_parts[0] * min(x_parts[1], y_parts[1]) >= v.FLOAT32_MAX


def _half_product_pays(X: sp.csr_matrix, column_counts: np.ndarray, threads: int, ratio: float = 4.0) -> bool:
    r"""Whether forming each pair once (half the multiply-adds) beats the plain product.

    The half product offers every pair to two shared row buffers, so it pays when the
    multiply-adds per row, :math:`w_i = \sum_{c \in x_i} \mathrm{df}_c` (``column_counts``: X's
    entries per column), dwarf the pairs they produce (at most :math:`\min(w_i, m)` per row):
    :math:`\sum_i w_i \ge \mathrm{ratio} \sum_i \min(w_i, m)`.
    """
    work = _core.row_weight_sums(indptr=v.contiguous(X.indptr), indices=v.contiguous(X.indices),
                                 weights=np.asarray(column_counts, dtype=np.float64), num_threads=threads)
    pairs = np.minimum(work, X.shape[0]).sum()
    return pairs > 0 and work.sum() >= ratio * pairs


def _prepare(metric: str, X: sp.csr_matrix, Y: sp.csr_matrix | None, threads: int):
    """Reweighted operands, kernel kind, and per-row scales (1/norm) or sizes for the metric."""
    none = None
    if metric == "dot":
        return X, Y, Kind.dot, none, none, none, none
    if metric == "pearson":
        return X, Y, Kind.pearson, none, none, none, none
    if metric == "msd":
        return X, Y, Kind.msd, none, none, none, none
    if metric == "jaccard":
        x_size = np.diff(X.indptr).astype(np.int64)
        y_size = x_size if Y is None else np.diff(Y.indptr).astype(np.int64)
        return X, Y, Kind.jaccard, none, none, x_size, y_size
    if metric == "adjusted_cosine":
        X, Y = _center_columns(X, Y)
    elif metric in ("tfidf", "bm25"):
        X, Y = _weight_rows(metric, X, Y)
    x_scale = _inverse_norms(X, threads)
    y_scale = x_scale if Y is None else _inverse_norms(Y, threads)
    return X, Y, Kind.dot, x_scale, y_scale, none, none


def _inverse_norms(X: sp.csr_matrix, threads: int) -> np.ndarray:
    """1 / ||row||_2, and 0 for empty rows."""
    sq = _core.row_square_sums(indptr=v.contiguous(X.indptr), data=v.contiguous(X.data),
                               num_threads=threads)
    with np.errstate(divide="ignore"):
        inv = np.where(sq > 0, 1.0 / np.sqrt(sq), 0.0)
    return inv.astype(X.dtype)


def _with_data(X: sp.csr_matrix, data: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix((data.astype(X.dtype, copy=False), X.indices, X.indptr), shape=X.shape)


def _center_columns(X: sp.csr_matrix, Y: sp.csr_matrix | None):
    """Subtract from each stored value the mean of its column's stored values."""
    parts = [X] if Y is None else [X, Y]
    d = X.shape[1]
    sums = sum(np.bincount(P.indices, weights=P.data, minlength=d) for P in parts)
    counts = sum(np.bincount(P.indices, minlength=d) for P in parts)
    means = np.divide(sums, counts, out=np.zeros(d), where=counts > 0)
    centred = [_with_data(P, P.data - means[P.indices]) for P in parts]
    return centred[0], (None if Y is None else centred[1])


def _weight_rows(metric: str, X: sp.csr_matrix, Y: sp.csr_matrix | None):
    """TF-IDF or BM25 weights, rows as documents; corpus statistics from Y (or X)."""
    for name, P in (("X", X), ("Y", Y)):
        if P is not None:
            check_weightable(metric, P, name)
    idf, avg_len = corpus_statistics(metric, X if Y is None else Y)
    WX = weigh_rows(metric, X, idf, avg_len)
    return WX, (None if Y is None else weigh_rows(metric, Y, idf, avg_len))


def check_weightable(metric: str, P: sp.csr_matrix, name: str) -> None:
    if P.nnz and P.data.min() < 0:
        raise ValueError(f"{name} must be non-negative for metric={metric!r} (counts or weights)")


def corpus_statistics(metric: str, corpus: sp.csr_matrix) -> tuple[np.ndarray, float]:
    r"""(idf per column, mean row length) of the corpus: :math:`\mathrm{idf}_c = \log N - \log(1 + \mathrm{df}_c)`."""
    N = corpus.shape[0]
    df = np.bincount(corpus.indices, minlength=corpus.shape[1])
    idf = np.log(N) - np.log1p(df)
    avg_len = corpus.sum(axis=1, dtype=np.float64).mean() if metric == "bm25" else 0.0
    return idf, avg_len


def weigh_rows(metric: str, P: sp.csr_matrix, idf: np.ndarray, avg_len: float) -> sp.csr_matrix:
    """P's values weighted by TF-IDF or BM25 with the corpus statistics given."""
    vals = P.data.astype(np.float64)
    if metric == "tfidf":
        return _with_data(P, np.sqrt(vals) * idf[P.indices])
    lengths = np.asarray(P.sum(axis=1, dtype=np.float64)).ravel()
    norm = (1.0 - BM25_B) + BM25_B * lengths / avg_len
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    return _with_data(P, vals * (BM25_K1 + 1.0) / (BM25_K1 * norm[rows] + vals) * idf[P.indices])
