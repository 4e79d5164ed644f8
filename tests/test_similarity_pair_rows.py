"""similarity_topk(pair_rows=...): shards of the half product merge into the whole result.

The merge here is the test's own (a per-row sort in plain Python); the reference is the call
without pair_rows, itself checked against brute force in test_similarity.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recforge.kernels import SIMILARITY_METRICS, similarity_topk
from similarity_reference import merge_by_hand, random_int_csr as _matrix


def as_rows(S):
    return [[(float(S.data[t]), int(S.indices[t])) for t in range(S.indptr[i], S.indptr[i + 1])]
            for i in range(S.shape[0])]


@st.composite
def shards(draw):
    m = draw(st.integers(1, 40))
    cuts = sorted(draw(st.lists(st.integers(0, m), max_size=4)))
    bounds = [0, *cuts, m]
    return m, list(zip(bounds[:-1], bounds[1:]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shards(), st.integers(1, 12), st.sampled_from([0.1, 0.4, 0.9]), st.integers(0, 2**31 - 1),
       st.sampled_from(SIMILARITY_METRICS), st.sampled_from([np.float32, np.float64]), st.booleans(),
       st.sampled_from([1, 3, 50]), st.integers(1, 3))
def test_shards_merge_into_the_whole_result(shard, d, density, seed, metric, dtype, use_exclude, k, threads):
    m, ranges = shard
    X = _matrix(m, d, density, seed, dtype)
    exclude = _matrix(m, m, 0.2, seed + 1) if use_exclude else None
    whole = similarity_topk(X, k, metric=metric, exclude=exclude, num_threads=threads)
    parts = [similarity_topk(X, k, metric=metric, exclude=exclude, num_threads=threads, pair_rows=r)
             for r in ranges]
    assert all(P.shape == (m, m) and P.dtype == whole.dtype for P in parts)
    assert merge_by_hand(parts, k) == as_rows(whole)


def test_a_shard_holds_only_pairs_with_a_row_in_its_range():
    X = _matrix(30, 6, 0.6, 7)
    S = similarity_topk(X, 30, metric="dot", num_threads=1, pair_rows=(10, 20)).tocoo()
    assert S.nnz and np.all((np.minimum(S.row, S.col) >= 10) & (np.minimum(S.row, S.col) < 20))
    dense = (X @ X.T).toarray()
    np.testing.assert_array_equal(S.data, dense[S.row, S.col])   # each found pair scores its dot product


@pytest.mark.parametrize("bad, message", [((3, 2), "0 <= r0 <= r1"), ((0, 99), "0 <= r0 <= r1"),
                                          ((0,), "pair"), (5, "pair")])
def test_bad_pair_rows_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        similarity_topk(_matrix(10, 4, 0.5, 1), 2, pair_rows=bad)


def test_pair_rows_need_y_none():
    X = _matrix(10, 4, 0.5, 1)
    with pytest.raises(ValueError, match="Y=None"):
        similarity_topk(X, 2, X, pair_rows=(0, 5))


def test_distributed_half_product_in_shards_is_bit_identical():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    import recforge.distributed as rd

    X = _matrix(400, 25, 0.5, 11)      # dense enough that the kernel forms each pair once
    E = _matrix(400, 400, 0.02, 12)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        for metric, exclude in (("cosine", None), ("pearson", E), ("bm25", None)):
            want = similarity_topk(X, 9, metric=metric, exclude=exclude, num_threads=2)
            got = rd.similarity_topk(X, 9, metric=metric, exclude=exclude, client=client,
                                     half_product_shards=True)
            assert as_rows(got) == as_rows(want)
