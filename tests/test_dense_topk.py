"""dense_topk against a brute-force numpy reference (dense scores + stable argsort).

Exact comparisons use small-integer data, for which every inner product is exact in float32
and float64, so ties are common and the tie rule (smaller index first) is checked exactly.
Random real-valued data is compared up to rounding.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge import _core
from recforge.kernels import dense_topk

ISAS = [isa for isa in (0, 1, 2) if isa <= _core.dense_isa()]  # portable, AVX2+FMA, AVX-512


def reference_topk(Q, V, k, exclude=None, metric="dot"):
    """Dense float64 scores, excluded items at -inf, stable argsort (ties: smaller index first)."""
    Q, V = np.asarray(Q, np.float64), np.asarray(V, np.float64)
    if metric == "cosine":
        qn, vn = np.linalg.norm(Q, axis=1), np.linalg.norm(V, axis=1)
        Q = Q / np.where(qn > 0, qn, 1)[:, None]
        V = V / np.where(vn > 0, vn, 1)[:, None]
    S = Q @ V.T
    if exclude is not None:
        S[np.asarray(sp.csr_matrix(exclude).toarray()) != 0] = -np.inf
    m, n = S.shape
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(S, order, axis=1)
    indices = np.where(np.isfinite(scores), order, -1)
    if k > n:
        indices = np.hstack([indices, np.full((m, k - n), -1)])
        scores = np.hstack([scores, np.full((m, k - n), -np.inf)])
    return indices, scores


def random_exclusion(rng, m, n, density, full_rows=()):
    mask = rng.random((m, n)) < density
    for r in full_rows:
        mask[r] = True
    return sp.csr_matrix(mask.astype(np.float32))


def integer_data(rng, m, n, d, dtype):
    return (rng.integers(-3, 4, size=(m, d)).astype(dtype), rng.integers(-3, 4, size=(n, d)).astype(dtype))


def core_call(Q, V, k, exclude, isa):
    """The compiled core with a chosen microkernel (inputs prepared as recforge.kernels does)."""
    ex_indptr = ex_indices = None
    if exclude is not None:
        E = sp.csr_matrix(exclude)
        E.eliminate_zeros()
        E.sort_indices()
        ex_indptr, ex_indices = E.indptr.astype(np.int64), E.indices.astype(np.int64)
    n = V.shape[0]
    return _core.dense_topk(Q=np.ascontiguousarray(Q), V=np.ascontiguousarray(V), k=min(k, n), out_k=k,
                            ex_indptr=ex_indptr, ex_indices=ex_indices, num_threads=2, isa=isa)


def test_hand_worked_example_with_ties_and_exclusion():
    # scores of q = (1, 0) against v0..v4 = (1,0), (2,0), (1,5), (2,1), (0,1) are 1, 2, 1, 2, 0.
    Q = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    V = np.array([[1, 0], [2, 0], [1, 5], [2, 1], [0, 1]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]))
    idx, scores = dense_topk(Q, V, 4, exclude=exclude)
    # row 0: 2 (v1), 2 (v3; tie, larger index after), 1 (v0), 1 (v2)
    np.testing.assert_array_equal(idx, [[1, 3, 0, 2], [3, 0, 2, 4]])
    np.testing.assert_array_equal(scores, [[2, 2, 1, 1], [2, 1, 1, 0]])
    assert idx.dtype == np.int64 and scores.dtype == np.float32


def test_exclusion_is_the_stored_pattern():
    # An explicitly stored 0 still excludes its item (same rule as similarity_topk's exclude).
    exclude = sp.csr_matrix((np.array([0.0]), np.array([1]), np.array([0, 1])), shape=(1, 3))
    idx, _ = dense_topk([[1.0]], [[1.0], [3.0], [2.0]], 3, exclude=exclude)
    np.testing.assert_array_equal(idx, [[2, 0, -1]])


def test_padding_when_fewer_than_k_remain():
    Q = np.ones((2, 3), dtype=np.float32)
    V = np.arange(12, dtype=np.float32).reshape(4, 3)  # scores 3, 12, 21, 30
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 1, 1]]))
    idx, scores = dense_topk(Q, V, 3, exclude=exclude)
    np.testing.assert_array_equal(idx, [[3, -1, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(scores, [[30, -np.inf, -np.inf], [-np.inf] * 3])
    idx, scores = dense_topk(Q, V, 6)  # k > n: every item, then padding
    np.testing.assert_array_equal(idx[0], [3, 2, 1, 0, -1, -1])


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 90), d=st.integers(1, 17), k=st.integers(1, 95),
       density=st.sampled_from([0.0, 0.05, 0.3, 0.9]), full_row=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_matches_reference_exactly_on_integer_data(m, n, d, k, density, full_row, dtype, seed):
    rng = np.random.default_rng(seed)
    Q, V = integer_data(rng, m, n, d, dtype)
    exclude = random_exclusion(rng, m, n, density, full_rows=[0] if full_row else []) if density or full_row else None
    idx, scores = dense_topk(Q, V, k, exclude=exclude, num_threads=2)
    ref_idx, ref_scores = reference_topk(Q, V, k, exclude)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# m <= 8 takes the few-queries path (panels packed one at a time; (5, 30000, 64) splits the
# panels between threads), larger m packs V whole and splits the queries into blocks.
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (7, 33, 5, 3), (5, 30000, 64, 25), (70, 1500, 64, 10),
                                   (50, 700, 19, 200), (9, 40, 3, 40)])
def test_every_microkernel_matches_reference(isa, dtype, shape):
    m, n, d, k = shape
    rng = np.random.default_rng(m * 1000 + n)
    Q, V = integer_data(rng, m, n, d, dtype)
    exclude = random_exclusion(rng, m, n, 0.1, full_rows=[m - 1])
    for ex in (None, exclude):
        idx, scores = core_call(Q, V, k, ex, isa)
        ref_idx, ref_scores = reference_topk(Q, V, k, ex)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 30), n=st.integers(1, 300), d=st.integers(1, 70), k=st.integers(1, 20),
       metric=st.sampled_from(["dot", "cosine"]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_real_valued_data_up_to_rounding(m, n, d, k, metric, dtype, seed):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((m, d)).astype(dtype)
    V = rng.standard_normal((n, d)).astype(dtype)
    V[0] = 0  # an all-zero item: cosine 0, not NaN
    exclude = random_exclusion(rng, m, n, 0.2)
    idx, scores = dense_topk(Q, V, k, exclude=exclude, metric=metric)
    ref_idx, ref_scores = reference_topk(Q, V, k, exclude, metric)
    tol = 1e-4 * max(1.0, np.sqrt(d)) if dtype == np.float32 else 1e-9
    rtol = 1e-6  # scores are returned as float32
    # The same scores in the same order (near-ties may swap indices, never the score sequence) ...
    finite = np.isfinite(ref_scores)
    np.testing.assert_array_equal(np.isfinite(scores), finite)
    np.testing.assert_allclose(scores[finite], ref_scores[finite], rtol=rtol, atol=tol)
    np.testing.assert_array_equal(idx[~finite], -1)
    # ... and every returned index really has its returned score and is not excluded.
    full_idx, full_scores = reference_topk(Q, V, n, None, metric)
    true = np.zeros((m, n))
    np.put_along_axis(true, full_idx, full_scores, axis=1)
    rows = np.nonzero(finite)[0]
    np.testing.assert_allclose(scores[finite], true[rows, idx[finite]], rtol=rtol, atol=tol)
    assert not np.any(exclude.toarray()[rows, idx[finite]])
    assert np.all(np.diff(scores, axis=1)[np.isfinite(scores[:, 1:])] <= 0)


def test_cosine_hand_worked():
    # q = (3, 4) / 5; v0 = (1, 0) -> 0.6, v1 = (0, 2) -> 0.8, v2 = (0, 0) -> 0, v3 = (-3, -4) -> -1
    idx, scores = dense_topk([[3.0, 4.0]], [[1, 0], [0, 2], [0, 0], [-3, -4]], 4, metric="cosine")
    np.testing.assert_array_equal(idx, [[1, 0, 2, 3]])
    np.testing.assert_allclose(scores, [[0.8, 0.6, 0.0, -1.0]], rtol=1e-6)


def test_integer_and_mixed_dtypes():
    Q = np.array([[1, 2]], dtype=np.int64)
    V = np.array([[1.0, 1.0], [0.0, 2.0]], dtype=np.float64)
    idx, scores = dense_topk(Q, V, 2)
    np.testing.assert_array_equal(idx, [[1, 0]])
    np.testing.assert_array_equal(scores, [[4.0, 3.0]])


def test_empty_inputs():
    idx, scores = dense_topk(np.zeros((0, 3)), np.ones((5, 3)), 2)
    assert idx.shape == (0, 2) and scores.shape == (0, 2)
    idx, scores = dense_topk(np.ones((2, 3)), np.zeros((0, 3)), 2)
    np.testing.assert_array_equal(idx, -np.ones((2, 2)))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(k=0), ValueError, "k"),
    (dict(k=-3), ValueError, "k"),
    (dict(k=1.5), TypeError, "k"),
    (dict(metric="euclid"), ValueError, "metric"),
    (dict(Q=np.ones((2, 4))), ValueError, "columns"),
    (dict(Q=np.ones(3)), ValueError, "Q must be 2-D"),
    (dict(Q=np.array([[np.nan, 0, 0]])), ValueError, "Q contains NaN"),
    (dict(V=np.array([[np.inf, 0, 0]] * 5)), ValueError, "V contains NaN"),
    (dict(exclude=sp.csr_matrix((2, 4))), ValueError, "exclude must have shape"),
    (dict(exclude=np.zeros((2, 5))), TypeError, "exclude must be a 2-D scipy.sparse"),
    (dict(Q=sp.csr_matrix(np.ones((2, 3)))), TypeError, "Q must be a dense"),
    (dict(Q=np.full((2, 3), 1e20), V=np.full((5, 3), 1e20)), ValueError, "overflow"),
    (dict(num_threads=-1), ValueError, "num_threads"),
])
def test_bad_input(kwargs, error, match):
    args = dict(Q=np.ones((2, 3)), V=np.ones((5, 3)), k=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        dense_topk(args.pop("Q"), args.pop("V"), args.pop("k"), **args)
