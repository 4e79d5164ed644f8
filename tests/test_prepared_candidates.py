"""prepare_candidates: Y prepared once gives similarity_topk's result bit for bit.

The reference is the plain call with the matrix (itself checked against brute force in
test_similarity.py); the prepared path shares none of its per-call preparation of Y.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recforge.kernels import PreparedCandidates, prepare_candidates, similarity_topk

PREPARABLE = ("dot", "cosine", "jaccard", "pearson", "msd", "tfidf", "bm25")


def _random(rows, d, density, seed, dtype, integer, index64=False):
    rng = np.random.default_rng(seed)
    M = sp.random(rows, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    M.data = np.ceil(M.data * 5) if integer else M.data * 4 - 1
    M = M.astype(dtype)
    if index64:
        M.indptr, M.indices = M.indptr.astype(np.int64), M.indices.astype(np.int64)
    return M


def assert_same_csr(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)  # exact: bit for bit (no NaN in these results)


@st.composite
def problems(draw):
    m, n, d = draw(st.integers(0, 12)), draw(st.integers(0, 70)), draw(st.integers(0, 12))
    density = draw(st.sampled_from([0.0, 0.1, 0.3, 0.7, 1.0]))
    metric = draw(st.sampled_from(PREPARABLE))
    integer = draw(st.booleans()) or metric in ("tfidf", "bm25")   # those need non-negative values
    x_dtype, y_dtype = (draw(st.sampled_from([np.float32, np.float64])) for _ in range(2))
    X = _random(m, d, density, draw(st.integers(0, 2**31 - 1)), x_dtype, integer, draw(st.booleans()))
    Y = _random(n, d, density, draw(st.integers(0, 2**31 - 1)), y_dtype, integer)
    if draw(st.booleans()) and n:                                   # binary Y: values dropped in the core
        Y.data[:] = 1
    exclude = None
    if draw(st.booleans()):
        exclude = _random(m, n, 0.3, draw(st.integers(0, 2**31 - 1)), np.float32, True)
    options = {"metric": metric, "exclude": exclude,
               "shrink": draw(st.sampled_from([0.0, 2.5])), "min_support": draw(st.sampled_from([1, 2]))}
    return X, Y, draw(st.sampled_from([1, 3, max(n, 1), n + 5])), options


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 3))
def test_prepared_equals_the_plain_call(problem, threads):
    X, Y, k, options = problem
    prepared = prepare_candidates(Y, metric=options["metric"], num_threads=threads)
    expected = similarity_topk(X, k, Y, num_threads=threads, **options)
    assert_same_csr(similarity_topk(X, k, prepared, num_threads=threads, **options), expected)
    # used again, with other query rows: nothing of one call leaks into the next
    assert_same_csr(similarity_topk(X[::-1], k, prepared, num_threads=threads, **{**options, "exclude": None}),
                    similarity_topk(X[::-1], k, Y, num_threads=threads, **{**options, "exclude": None}))


def test_many_candidates_use_the_narrow_indices_and_match():
    X = _random(40, 30, 0.2, 1, np.float32, True)
    Y = _random(70000, 30, 0.01, 2, np.float32, True)   # n > 65535: wide candidate indices
    for metric in ("cosine", "bm25"):
        assert_same_csr(similarity_topk(X, 7, prepare_candidates(Y, metric=metric), metric=metric, num_threads=2),
                        similarity_topk(X, 7, Y, metric=metric, num_threads=2))


def test_adjusted_cosine_cannot_be_prepared():
    with pytest.raises(ValueError, match="adjusted_cosine.*jointly"):
        prepare_candidates(sp.eye(3, format="csr"), metric="adjusted_cosine")


def test_metric_must_match_the_preparation_and_shapes_are_checked():
    Y = prepare_candidates(sp.eye(4, format="csr", dtype=np.float32), metric="cosine")
    assert isinstance(Y, PreparedCandidates) and Y.shape == (4, 4)
    with pytest.raises(ValueError, match="prepared for metric='cosine'"):
        similarity_topk(sp.eye(4, format="csr"), 2, Y, metric="dot")
    with pytest.raises(ValueError, match="same number of columns"):
        similarity_topk(sp.eye(3, 5, format="csr"), 2, Y)
    with pytest.raises(ValueError, match="metric must be one of"):
        prepare_candidates(sp.eye(3, format="csr"), metric="nope")
    with pytest.raises(ValueError, match="Y must be non-negative"):
        prepare_candidates(-sp.eye(3, format="csr"), metric="tfidf")


def test_float32_overflow_behaves_as_the_plain_call():
    X = sp.csr_matrix(np.full((2, 3), 3e38, dtype=np.float32))
    Y = prepare_candidates(X, metric="dot")
    with pytest.raises(ValueError, match="overflow float32"):
        similarity_topk(X, 1, Y, metric="dot")
    Yc = prepare_candidates(X, metric="cosine")
    assert_same_csr(similarity_topk(X, 2, Yc), similarity_topk(X, 2, X))


def test_columns_mostly_unused_take_the_plain_path_with_the_same_result():
    W = sp.csr_matrix(([1.0, 2.0, 3.0], ([0, 1, 1], [5, 5, 10 ** 7])), shape=(2, 10 ** 7 + 1), dtype=np.float32)
    Y = prepare_candidates(W, metric="cosine")
    assert not Y.prepared
    assert_same_csr(similarity_topk(W, 2, Y), similarity_topk(W, 2, W))
