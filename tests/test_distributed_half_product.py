"""recforge.distributed.half_product's planning, without a cluster: how Y=None is cut into shards.

References are brute force on the dense pattern (each row's later partners per column, counted
by hand) and the kernel's own decision (``recforge.kernels.similarity._half_product_pays`` on
the transposed matrix), never the functions under test.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("distributed")

from recforge.distributed import half_product as hp  # noqa: E402
from recforge.kernels import _validation as v  # noqa: E402
from recforge.kernels.similarity import _half_product_pays as kernel_pays  # noqa: E402
from similarity_reference import merge_by_hand  # noqa: E402


def _pattern(m, d, density, seed, order):
    rng = np.random.default_rng(seed)
    dense = rng.random((m, d)) < density * (rng.random(d) if order == "skewed" else 1.0)
    return sp.csr_matrix(dense.astype(np.float32))


def brute_force_ranges(X, shards):
    """Row i's work = sum over its columns c of the rows j > i holding c; cuts at equal shares."""
    P = X.toarray() != 0
    m = P.shape[0]
    later = np.array([sum(int(P[i + 1:, c].sum()) for c in np.flatnonzero(P[i])) for i in range(m)])
    total = later.sum()
    cuts = [next((r for r in range(m) if later[:r + 1].sum() > total * s / shards), m) for s in range(1, shards)]
    bounds = sorted(set([0, *cuts, m]))
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 80), st.integers(1, 15), st.sampled_from([0.05, 0.3, 0.8]), st.integers(0, 2**31 - 1),
       st.integers(1, 6), st.sampled_from(["uniform", "skewed"]), st.sampled_from([2, 7, 256]))
def test_pair_ranges_cut_the_work_where_brute_force_does(m, d, density, seed, shards, order, grid):
    X = _pattern(m, d, density, seed, order)
    old = hp.WORK_GRID
    hp.WORK_GRID = grid              # a coarse grid must refine to the same cuts
    try:
        got = [(s.start, s.stop) for s in hp.pair_ranges(X, shards)]
    finally:
        hp.WORK_GRID = old
    if shards == 1 or X.nnz == 0:
        assert got == [(0, m)]
    else:
        assert got == brute_force_ranges(X, shards)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 60), st.integers(1, 40), st.sampled_from([0.02, 0.2, 0.7]), st.integers(0, 2**31 - 1),
       st.sampled_from(["uniform", "skewed"]))
def test_half_product_decision_matches_the_kernel(m, d, density, seed, order):
    X = _pattern(m, d, density, seed, order)
    want = X.nnz > 0 and bool(kernel_pays(X, np.diff(v.transpose_csr(X).indptr), 1))
    assert hp.half_product_pays(X) == want


def test_merge_keeps_each_rows_best_k_ties_by_column():
    a = sp.csr_matrix((np.float32([0.9, 0.5, 0.7]), [1, 2, 2], [0, 2, 3]), shape=(2, 3))
    b = sp.csr_matrix((np.float32([0.5, 0.8, 0.6]), [0, 0, 1], [0, 1, 3]), shape=(2, 3))
    merged = hp.merge_row_candidates([a, b], 2)
    # row 0: 0.9@1, 0.5@2 (a), 0.5@0 (b): the tie at 0.5 goes to the smaller column, 0
    # row 1: 0.7@2 (a), 0.8@0, 0.6@1 (b): 0.8@0, 0.7@2
    assert merged.indptr.tolist() == [0, 2, 4]
    assert merged.indices.tolist() == [1, 0, 0, 2]
    assert merged.data.tolist() == pytest.approx([0.9, 0.5, 0.8, 0.7])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 300), st.integers(1, 4), st.integers(1, 12), st.integers(0, 2**31 - 1),
       st.sampled_from([np.float32, np.float64]), st.booleans())
def test_merge_equals_sorting_each_row_by_hand(m, n, n_parts, k, seed, dtype, coarse):
    """Parts hold disjoint columns per row (as shards do), scores of both signs with ties (coarse)."""
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, n_parts, (m, n))                    # which part offers pair (i, j), if any
    offered = rng.random((m, n)) < 0.3
    scores = rng.integers(-3, 4, (m, n)).astype(dtype) / 4 if coarse else rng.standard_normal((m, n)).astype(dtype)
    scores[scores == 0] = 1                                     # the kernel never returns a zero score
    parts = [sp.csr_matrix(np.where(offered & (owner == p), scores, 0).astype(dtype)) for p in range(n_parts)]
    merged = hp.merge_row_candidates(parts, k)
    want = merge_by_hand(parts, k)
    assert merged.dtype == dtype
    for i in range(m):
        got = list(zip(merged.data[merged.indptr[i]:merged.indptr[i + 1]].tolist(),
                       merged.indices[merged.indptr[i]:merged.indptr[i + 1]].tolist()))
        assert got == want[i]


def test_the_packed_key_is_used_only_where_it_fits():
    rows, cols = np.array([0, 1]), np.array([0, 1])
    assert hp.packed_order_key(rows, np.float32([1, 2]), cols, 2**15, 2**17) is not None
    assert hp.packed_order_key(rows, np.float32([1, 2]), cols, 2**20, 2**12) is not None     # 20 + 32 + 12 bits
    assert hp.packed_order_key(rows, np.float32([1, 2]), cols, 2**20 + 1, 2**12) is None
    assert hp.packed_order_key(rows, np.float64([1, 2]), cols, 10, 10) is None
