"""The kernel fuzz suite's child program: ``python fuzz_kernels_child.py ENTRY MODE EXAMPLES``.

Runs one hypothesis property over one public kernel entry point in this process, so that the
parent test (tests/test_fuzz_kernels.py) survives a crash and reports the case that caused it:
every case is printed to stderr (``CASE ...``) before it runs.

- MODE ``valid``: random valid inputs in every layout scipy and numpy allow (strided, reversed,
  read-only, int64 indices, other sparse formats) against brute-force references.
- MODE ``hostile``: malformed CSR (indices out of range, negative, decreasing or shifted
  ``indptr``), NaN/inf, empty operands, huge/negative/float k, wrong dtypes, wrong shapes,
  int64 indices beyond int32, absurd thread counts. Each call must raise ValueError or
  TypeError, or return a well-formed result; a corruption that took effect must raise.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recforge.kernels import (SIMILARITY_METRICS, dense_topk, normalize_adjacency,  # noqa: E402
                              propagate, similarity_topk, spmm)
from similarity_reference import check_topk_row, reference_similarity  # noqa: E402

VALUES = [0.0, 0.0, 0.0, 1.0, 2.0, -1.0, 0.5, 3.0]
LAYOUTS = ("contiguous", "strided", "reversed", "read_only", "int64", "csc", "coo")
VALUE_DEFECTS = ("nan", "inf", "complex")  # harmless in an exclude pattern (its values are ignored)
CORRUPTIONS = ("index_high", "index_negative", "index_beyond_int32", "indptr_decreasing", "indptr_start",
               "indptr_end", "indptr_short", "nan", "inf", "complex", "float_indices")


def log(*parts) -> None:
    print("CASE", *parts, file=sys.stderr, flush=True)


# -- inputs ----------------------------------------------------------------------------------------

@st.composite
def dense_values(draw, rows, cols, nonneg=False):
    values = [abs(x) for x in VALUES] if nonneg else VALUES
    flat = draw(st.lists(st.sampled_from(values), min_size=rows * cols, max_size=rows * cols))
    return np.array(flat, dtype=np.float64).reshape(rows, cols)


@st.composite
def csr_of(draw, rows, cols, nonneg=False):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return sp.csr_matrix(draw(dense_values(rows, cols, nonneg)).astype(dtype))


def relayout(X: sp.csr_matrix, how: str):
    """The same matrix with its arrays in another layout or format (valid input)."""
    X = X.copy()
    if how == "strided":
        X.data, X.indices, X.indptr = (np.repeat(a, 2)[::2] for a in (X.data, X.indices, X.indptr))
    elif how == "reversed":
        X.data, X.indices, X.indptr = (a[::-1].copy()[::-1] for a in (X.data, X.indices, X.indptr))
    elif how == "read_only":
        for a in (X.data, X.indices, X.indptr):
            a.flags.writeable = False
    elif how == "int64":  # set after construction: the constructor would narrow them to int32
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    elif how == "csc":
        return X.tocsc()
    elif how == "coo":
        return X.tocoo()
    return X


def corrupt(X: sp.csr_matrix, how: str, amount: int) -> tuple[sp.csr_matrix, bool]:
    """X with one structural or value defect; and whether the defect took effect."""
    X = X.copy()
    X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    m, n = X.shape
    nnz = X.nnz
    if how == "index_high" and nnz:
        X.indices[amount % nnz] = n + amount
    elif how == "index_negative" and nnz:
        X.indices[amount % nnz] = -amount
    elif how == "index_beyond_int32" and nnz:
        X.indices[amount % nnz] = 2 ** 31 + amount
    elif how == "indptr_decreasing" and m >= 2:
        X.indptr[1] = X.indptr[2] + 1
    elif how == "indptr_start" and m:
        X.indptr[0] = amount
    elif how == "indptr_end" and m:
        X.indptr[-1] = nnz + amount
    elif how == "indptr_short":
        X.indptr = X.indptr[:-1]
    elif how in ("nan", "inf") and nnz:
        X.data[amount % nnz] = np.nan if how == "nan" else -np.inf
    elif how == "complex":
        return X.astype(np.complex128) + 0j, True
    elif how == "float_indices" and nnz:
        X.indices = X.indices.astype(np.float64)
    else:
        return X, False
    return X, True


HOSTILE_K = [0, -1, -(2 ** 40), 10 ** 12, 2.5, True, "3", None, np.int64(2), 2 ** 70]
HOSTILE_THREADS = [0, 1, 3, -1, 10 ** 6, 2 ** 40, 1.5]


# -- well-formed results -----------------------------------------------------------------------------

def assert_csr_result(S, shape, k=None):
    assert isinstance(S, sp.csr_matrix), type(S)
    assert S.shape == shape, (S.shape, shape)
    S.check_format(full_check=True)
    assert np.isfinite(S.data).all()
    if k is not None and shape[0]:
        assert np.diff(S.indptr).max() <= k


def assert_topk_result(result, m, n, k):
    idx, scores = result
    assert idx.shape == (m, k) and scores.shape == (m, k)
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    assert ((idx >= -1) & (idx < n)).all()
    assert ((idx == -1) == np.isneginf(scores)).all()


def outcome(call, must_fail: bool, check):
    """Runs call(); an error must be ValueError/TypeError; a result must pass check()."""
    try:
        result = call()
    except (ValueError, TypeError):
        return
    assert not must_fail, "a corrupted input was accepted"
    check(result)


# -- similarity_topk ---------------------------------------------------------------------------------

@st.composite
def similarity_valid(draw):
    m, d = draw(st.integers(0, 7)), draw(st.integers(0, 6))
    X = draw(csr_of(m, d))
    Y = draw(st.one_of(st.none(), st.integers(0, 6).flatmap(lambda r: csr_of(r, d))))
    metric = draw(st.sampled_from(SIMILARITY_METRICS))
    if metric in ("tfidf", "bm25"):
        X, Y = abs(X), (None if Y is None else abs(Y))
    n = m if Y is None else Y.shape[0]
    k = draw(st.sampled_from([1, 2, max(n, 1), n + 3, 10 ** 9]))
    E = draw(st.one_of(st.none(), csr_of(m, n))) if m and n else None
    return X, Y, k, metric, E, draw(st.sampled_from(LAYOUTS)), draw(st.integers(1, 3))


def similarity_valid_property(case):
    X, Y, k, metric, E, layout, threads = case
    log("similarity_topk", layout, metric, k, X.shape, None if Y is None else Y.shape, E is not None)
    S = similarity_topk(relayout(X, layout), k, None if Y is None else relayout(Y, layout), metric=metric,
                        exclude=None if E is None else relayout(E, layout), num_threads=threads)
    n = X.shape[0] if Y is None else Y.shape[0]
    assert_csr_result(S, (X.shape[0], n), k)
    ref = reference_similarity(X.toarray(), None if Y is None else Y.toarray(), metric)
    f64 = X.dtype == np.float64 or (Y is not None and Y.dtype == np.float64)
    tol = 1e-6 if (f64 or metric in ("pearson", "msd")) else 2e-4
    for i in range(X.shape[0]):
        forbidden = set() if Y is not None else {i}
        if E is not None:
            forbidden |= set(E.indices[E.indptr[i]:E.indptr[i + 1]].tolist())
        row = S.getrow(i)
        check_topk_row(row.indices, row.data, ref[i], k, tol, sorted(forbidden))


@st.composite
def similarity_hostile(draw):
    m, d = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    X = draw(csr_of(m, d))
    target = draw(st.sampled_from(["X", "Y", "exclude", "k", "threads", "metric", "wide", "dense", "shape"]))
    how = draw(st.sampled_from(CORRUPTIONS))
    amount = draw(st.integers(1, 2 ** 20))
    return X, target, how, amount, draw(st.sampled_from(HOSTILE_K)), draw(st.sampled_from(HOSTILE_THREADS))


def similarity_hostile_property(case):
    X, target, how, amount, k, threads = case
    m, d = X.shape
    args = dict(X=X, k=3, Y=None, exclude=None, num_threads=1, metric="cosine")
    must_fail = False
    if target in ("X", "Y", "exclude"):
        base = X if target != "exclude" else sp.csr_matrix(np.eye(m, dtype=np.float32))
        args[target], must_fail = corrupt(base, how, amount)
        must_fail = must_fail and not (target == "exclude" and how in VALUE_DEFECTS)
    elif target == "k":
        args["k"] = k
    elif target == "threads":
        args["num_threads"] = threads
    elif target == "metric":
        args["metric"] = how
    elif target == "wide":  # int64 indices beyond int32: 2**31 + 5 columns, a few stored
        W = sp.csr_matrix((m, 2 ** 31 + 5), dtype=np.float32)
        cols = np.sort(np.unique(np.array([amount, 2 ** 31 + 4 - amount % 7, 2 ** 31 + 1], np.int64)))
        W.indptr = np.repeat(np.arange(m + 1, dtype=np.int64), 1) * cols.size
        W.indices = np.tile(cols, m)
        W.data = np.ones(m * cols.size, np.float32)
        args["X"] = W
    elif target == "dense":
        args["X"] = X.toarray()
        must_fail = True
    elif target == "shape":
        args["exclude"] = sp.csr_matrix((m + 1, m))
        must_fail = True
    log("similarity_topk", target, how, amount, repr(args["k"]), repr(args["num_threads"]), X.shape)
    n = args["X"].shape[0] if hasattr(args["X"], "shape") else 0
    outcome(lambda: similarity_topk(**args), must_fail,
            lambda S: assert_csr_result(S, (args["X"].shape[0], n)))


# -- dense_topk ----------------------------------------------------------------------------------------

@st.composite
def dense_valid(draw):
    m, n, d = draw(st.integers(0, 6)), draw(st.integers(0, 8)), draw(st.integers(1, 5))
    Q, V = draw(dense_values(m, d)), draw(dense_values(n, d))
    E = draw(st.one_of(st.none(), csr_of(m, n))) if m and n else None
    k = draw(st.sampled_from([1, 2, max(n, 1), n + 2]))
    return Q, V, k, E, draw(st.sampled_from(["dot", "cosine"])), draw(st.sampled_from(LAYOUTS))


def dense_layout(A: np.ndarray, how: str) -> np.ndarray:
    A = A.astype(np.float32)
    if how == "strided":
        return np.repeat(A, 2, axis=1)[:, ::2]
    if how == "reversed":
        return A[::-1].copy()[::-1]
    if how == "read_only":
        A.flags.writeable = False
    if how == "int64":
        return A.T.copy().T  # Fortran order
    return A


def dense_valid_property(case):
    Q, V, k, E, metric, layout = case
    log("dense_topk", layout, metric, k, Q.shape, V.shape, E is not None)
    idx, scores = dense_topk(dense_layout(Q, layout), dense_layout(V, layout), k, metric=metric,
                             exclude=None if E is None else relayout(E, layout), num_threads=2)
    m, n = Q.shape[0], V.shape[0]
    assert_topk_result((idx, scores), m, n, k)
    Qf, Vf = Q.astype(np.float32).astype(np.float64), V.astype(np.float32).astype(np.float64)
    if metric == "cosine":
        unit = lambda A: A / np.where(np.linalg.norm(A, axis=1) > 0, np.linalg.norm(A, axis=1), 1)[:, None]  # noqa: E731
        Qf, Vf = unit(Qf), unit(Vf)
    S = Qf @ Vf.T
    for i in range(m):
        banned = set() if E is None else set(E.indices[E.indptr[i]:E.indptr[i + 1]].tolist())
        allowed = [j for j in range(n) if j not in banned]
        got = [j for j in idx[i] if j >= 0]
        assert len(got) == min(k, len(allowed)) and not set(got) & banned
        best = sorted(allowed, key=lambda j: (-S[i, j], j))[:k]
        np.testing.assert_allclose(np.sort(S[i, got])[::-1], S[i, best], atol=1e-5)
        np.testing.assert_allclose(scores[i, :len(got)], S[i, got], atol=1e-5)


@st.composite
def dense_hostile(draw):
    m, n, d = draw(st.integers(0, 5)), draw(st.integers(0, 6)), draw(st.integers(1, 4))
    target = draw(st.sampled_from(["Q", "V", "exclude", "k", "threads", "metric", "shape"]))
    how = draw(st.sampled_from(["nan", "inf", "1d", "3d", "object", "complex", "huge", "sparse", "columns",
                                "text", *CORRUPTIONS]))
    return (draw(dense_values(m, d)), draw(dense_values(n, d)), target, how, draw(st.integers(1, 2 ** 20)),
            draw(st.sampled_from(HOSTILE_K)), draw(st.sampled_from(HOSTILE_THREADS)))


def hostile_dense_array(A: np.ndarray, how: str, axis: int):
    """A with one defect, and whether the defect must be rejected (``axis``: the dimension that
    must match the other operand)."""
    A = A.astype(np.float32)
    if how in ("nan", "inf") and A.size:
        A.flat[0] = np.nan if how == "nan" else np.inf
        return A, True
    table = {"1d": (A.ravel(), True), "3d": (A[None], True), "object": (A.astype(object), False),
             "complex": (A.astype(np.complex64), True), "huge": (np.full(A.shape, 1e30, np.float32), False),
             "sparse": (sp.csr_matrix(A), True), "columns": (np.ones((A.shape[0] + (axis == 0), A.shape[1] + (axis == 1))), True),
             "text": (np.full(A.shape, "x"), True)}
    return table.get(how, (A, False))


def dense_hostile_property(case):
    Q, V, target, how, amount, k, threads = case
    m, n = Q.shape[0], V.shape[0]
    args = dict(Q=Q, V=V, k=3, exclude=None, num_threads=1, metric="dot")
    must_fail = False
    if target in ("Q", "V"):
        args[target], must_fail = hostile_dense_array(args[target], how, axis=1)
    elif target == "exclude" and how in CORRUPTIONS:
        args["exclude"], must_fail = corrupt(sp.csr_matrix(np.ones((m, n), np.float32)), how, amount)
        must_fail = must_fail and how not in VALUE_DEFECTS
    elif target == "k":
        args["k"] = k
    elif target == "threads":
        args["num_threads"] = threads
    elif target == "metric":
        args["metric"] = how
    elif target == "shape":
        args["exclude"] = sp.csr_matrix((m, n + 1))
        must_fail = True
    log("dense_topk", target, how, amount, repr(args["k"]), repr(args["num_threads"]), Q.shape, V.shape)

    def check(result):
        kk = int(args["k"])
        assert_topk_result(result, m, n, kk)

    outcome(lambda: dense_topk(**args), must_fail, check)


# -- spmm, propagate, normalize_adjacency -------------------------------------------------------------

@st.composite
def graph_valid(draw):
    n, d = draw(st.integers(0, 7)), draw(st.integers(1, 4))
    A = draw(csr_of(n, n))
    E = draw(dense_values(n, d))
    layers = draw(st.integers(0, 3))
    combine = draw(st.sampled_from(["mean", "sum", "last", "weights"]))
    if combine == "weights":
        combine = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, -2.0]), min_size=layers + 1, max_size=layers + 1))
    return A, E, layers, combine, draw(st.sampled_from(LAYOUTS))


def graph_valid_property(case):
    A, E, layers, combine, layout = case
    log("spmm/propagate", layout, A.shape, E.shape, layers, combine)
    f64 = A.dtype == np.float64
    tol = 1e-9 if f64 else 1e-4
    Ad, Ed = A.toarray().astype(np.float64), E.astype(np.float32 if not f64 else np.float64).astype(np.float64)
    Y = spmm(relayout(A, layout), dense_layout(E, layout) if not f64 else E, num_threads=2)
    np.testing.assert_allclose(Y, Ad @ Ed, rtol=tol, atol=tol * 10)
    weights = {"mean": [1 / (layers + 1)] * (layers + 1), "sum": [1.0] * (layers + 1),
               "last": [0.0] * layers + [1.0]}.get(combine, combine) if isinstance(combine, str) else combine
    expected, layer = weights[0] * Ed, Ed
    for w in weights[1:]:
        layer = Ad @ layer
        expected = expected + w * layer
    P = propagate(relayout(A, layout), dense_layout(E, layout) if not f64 else E, layers, combine=combine,
                  num_threads=2)
    np.testing.assert_allclose(P, expected, rtol=tol * 10, atol=tol * 100)
    R = abs(A)
    N = normalize_adjacency(relayout(R, layout))
    assert_csr_result(N, (2 * R.shape[0],) * 2)
    deg_u, deg_i = R.toarray().sum(1), R.toarray().sum(0)
    Rd = R.toarray()
    with np.errstate(divide="ignore", invalid="ignore"):
        top = np.where(Rd > 0, Rd / np.sqrt(np.outer(deg_u, deg_i)), 0.0)
    np.testing.assert_allclose(N.toarray()[:R.shape[0], R.shape[0]:], top, rtol=1e-5, atol=1e-7)


@st.composite
def graph_hostile(draw):
    n, d = draw(st.integers(0, 6)), draw(st.integers(1, 4))
    target = draw(st.sampled_from(["A", "E", "layers", "combine", "threads", "square", "R"]))
    how = draw(st.sampled_from([*CORRUPTIONS, "nan", "1d", "complex", "sparse", "columns", "text"]))
    return (draw(csr_of(n, n)), draw(dense_values(n, d)), target, how, draw(st.integers(1, 2 ** 20)),
            draw(st.sampled_from([-1, 2.5, "2", 10 ** 9, None, True])), draw(st.sampled_from(HOSTILE_THREADS)))


def graph_hostile_property(case):
    A, E, target, how, amount, bad, threads = case
    n, d = E.shape
    args = dict(A=A, E=E.astype(np.float32), layers=2, combine="mean", num_threads=1)
    must_fail = False
    if target in ("A", "R") and how in CORRUPTIONS:
        args["A"], must_fail = corrupt(A, how, amount)
    elif target == "E":
        args["E"], must_fail = hostile_dense_array(E, how, axis=0)
    elif target == "layers" and bad != 10 ** 9:  # 10**9 layers is valid (and slow)
        args["layers"] = bad
    elif target == "combine":
        args["combine"] = bad if not isinstance(bad, bool) else [1.0] * (n + 7)
    elif target == "threads":
        args["num_threads"] = threads
    elif target == "square":
        args["A"], must_fail = sp.csr_matrix((n, n + 1), dtype=np.float32), True
    log("graph", target, how, amount, repr(bad), repr(args["num_threads"]), A.shape, E.shape)

    def check_dense_result(Y):
        assert isinstance(Y, np.ndarray) and Y.shape == (n, d) and np.isfinite(Y).all()

    if target == "R":
        outcome(lambda: normalize_adjacency(args["A"]), must_fail,
                lambda N: assert_csr_result(N, (2 * n, 2 * n)))
        return
    outcome(lambda: propagate(**args), must_fail, check_dense_result)
    spmm_args = dict(A=args["A"], B=args["E"], num_threads=args["num_threads"])
    outcome(lambda: spmm(**spmm_args), must_fail, check_dense_result)


PROPERTIES = {
    ("similarity_topk", "valid"): (similarity_valid, similarity_valid_property),
    ("similarity_topk", "hostile"): (similarity_hostile, similarity_hostile_property),
    ("dense_topk", "valid"): (dense_valid, dense_valid_property),
    ("dense_topk", "hostile"): (dense_hostile, dense_hostile_property),
    ("graph", "valid"): (graph_valid, graph_valid_property),
    ("graph", "hostile"): (graph_hostile, graph_hostile_property),
}


def main(entry: str, mode: str, examples: int) -> None:
    strategy, prop = PROPERTIES[(entry, mode)]
    run = settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))(given(strategy())(prop))
    run()
    print(f"FUZZ-OK {entry} {mode} {examples}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
