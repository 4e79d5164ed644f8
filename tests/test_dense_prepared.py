"""dense_topk's batch invariance and prepare_dense_items.

A row's result must not depend, to the last bit, on which other rows share its call (the
few-queries and many-queries paths, blocking, thread count) nor on whether V was prepared. The
reference for each row is the same kernel called with that row alone; the exactness of the
values themselves is checked against brute force in test_dense_topk.py.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge import _core
from recforge.kernels import PreparedDenseItems, dense_topk, prepare_dense_items

ISAS = [isa for isa in (0, 1, 2) if isa <= _core.dense_isa()]


def real_data(seed, m, n, d, dtype):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, d)).astype(dtype), rng.standard_normal((n, d)).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(9, 60), n=st.integers(1, 400), d=st.integers(1, 80), k=st.integers(1, 30),
       dtype=st.sampled_from([np.float32, np.float64]), isa=st.sampled_from(ISAS), seed=st.integers(0, 2**31 - 1))
def test_each_row_alone_equals_its_row_in_a_batch_bit_for_bit(m, n, d, k, dtype, isa, seed):
    Q, V = real_data(seed, m, n, d, dtype)
    k = min(k, n)
    batch = _core.dense_topk(Q=Q, V=V, k=k, out_k=k, num_threads=2, isa=isa)
    packed = _core.dense_pack(V=V, num_threads=1, isa=isa)
    for i in range(m):
        for threads in (1, 2):
            alone = _core.dense_topk(Q=Q[i:i + 1], V=V, k=k, out_k=k, num_threads=threads, isa=isa)
            np.testing.assert_array_equal(alone[0][0], batch[0][i])
            np.testing.assert_array_equal(alone[1][0], batch[1][i])
        pre = _core.dense_topk(Q=Q[i:i + 1], V=V, k=k, out_k=k, num_threads=1, packed=packed)
        np.testing.assert_array_equal(pre[1][0], batch[1][i])
    for lo, hi in ((0, min(m, 5)), (0, m - 1), (3, m)):  # few-query and many-query sub-batches
        part = _core.dense_topk(Q=np.ascontiguousarray(Q[lo:hi]), V=V, k=k, out_k=k, num_threads=2, packed=packed)
        np.testing.assert_array_equal(part[0], batch[0][lo:hi])
        np.testing.assert_array_equal(part[1], batch[1][lo:hi])


@settings(max_examples=30, deadline=None)
@given(m=st.integers(0, 40), n=st.integers(1, 300), d=st.integers(1, 70), k=st.integers(1, 40),
       metric=st.sampled_from(["dot", "cosine"]), dtype=st.sampled_from([np.float32, np.float64]),
       density=st.sampled_from([0.0, 0.2, 1.0]), seed=st.integers(0, 2**31 - 1))
def test_prepared_items_give_the_plain_result(m, n, d, k, metric, dtype, density, seed):
    Q, V = real_data(seed, m, n, d, dtype)
    V[0] = 0
    rng = np.random.default_rng(seed + 1)
    exclude = sp.csr_matrix((rng.random((m, n)) < density).astype(np.float32)) if density else None
    P = prepare_dense_items(V, metric=metric)
    for threads in (1, 2):
        plain = dense_topk(Q, V, k, exclude=exclude, metric=metric, num_threads=threads)
        prepared = dense_topk(Q, P, k, exclude=exclude, metric=metric, num_threads=threads)
        np.testing.assert_array_equal(prepared[0], plain[0])
        np.testing.assert_array_equal(prepared[1], plain[1])


def test_wider_queries_take_the_plain_path_with_the_same_result():
    Q, V = real_data(3, 12, 50, 9, np.float32)
    P = prepare_dense_items(V)
    Q64 = Q.astype(np.float64) / 3.0
    for a, b in zip(dense_topk(Q64, P, 7), dense_topk(Q64, V, 7)):
        np.testing.assert_array_equal(a, b)


def test_prepared_items_name_what_is_wrong():
    Q, V = real_data(4, 3, 20, 5, np.float32)
    P = prepare_dense_items(V, metric="cosine")
    with pytest.raises(ValueError, match="prepared for metric='cosine'"):
        dense_topk(Q, P, 3, metric="dot")
    with pytest.raises(ValueError, match="same number of columns"):
        dense_topk(Q[:, :4], P, 3, metric="cosine")
    with pytest.raises(ValueError, match="metric must be one of"):
        prepare_dense_items(V, metric="euclid")
    with pytest.raises(ValueError, match="NaN or infinite"):
        prepare_dense_items(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="exclude"):
        dense_topk(Q, P, 3, metric="cosine", exclude=sp.csr_matrix((3, 19)))
    packed = _core.dense_pack(V=V, num_threads=1)
    with pytest.raises(ValueError, match="packed items do not match V"):
        _core.dense_topk(Q=Q, V=np.ascontiguousarray(V[:10]), k=3, out_k=3, num_threads=1, packed=packed)


def test_overflow_check_uses_the_source_values():
    V = np.full((4, 2), 1e20, np.float32)
    with pytest.raises(ValueError, match="overflow"):
        dense_topk(np.full((1, 2), 1e20, np.float32), prepare_dense_items(V), 2)


def test_pickled_prepared_items_are_prepared_again():
    Q, V = real_data(5, 10, 64, 16, np.float32)
    P = prepare_dense_items(V, metric="cosine")
    Q2 = pickle.loads(pickle.dumps(P))
    assert isinstance(Q2, PreparedDenseItems) and Q2.metric == "cosine" and Q2.shape == P.shape
    for a, b in zip(dense_topk(Q, Q2, 5, metric="cosine"), dense_topk(Q, P, 5, metric="cosine")):
        np.testing.assert_array_equal(a, b)


def test_empty_catalogue_and_queries():
    P = prepare_dense_items(np.zeros((0, 3), np.float32))
    idx, scores = dense_topk(np.ones((2, 3), np.float32), P, 2)
    np.testing.assert_array_equal(idx, -np.ones((2, 2)))
    idx, _ = dense_topk(np.zeros((0, 3), np.float32), prepare_dense_items(np.ones((4, 3), np.float32)), 2)
    assert idx.shape == (0, 2)
