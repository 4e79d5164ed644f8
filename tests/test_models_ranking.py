"""Top-n selection shared by every model, against sorting every row in plain Python."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.models.ranking import complete_sparse_topn, first_free_codes, topn_dense


def reference(scores: np.ndarray, n: int, excluded: list[set]):
    """Per row: candidates sorted by (-score, code), first n, padded with (-1, -inf)."""
    items = np.full((scores.shape[0], n), -1)
    out = np.full((scores.shape[0], n), -np.inf)
    for r, row in enumerate(scores):
        order = sorted((c for c in range(row.size) if c not in excluded[r]), key=lambda c: (-row[c], c))[:n]
        items[r, :len(order)] = order
        out[r, :len(order)] = row[order]
    return items, out


@st.composite
def cases(draw):
    m = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    # few distinct values, zeros and negatives included: ties everywhere
    values = draw(st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.0, 0.0, 0.5, 1.0, 3.0]),
                           min_size=m * n_items, max_size=m * n_items))
    mask = draw(st.lists(st.booleans(), min_size=m * n_items, max_size=m * n_items))
    n = draw(st.integers(1, n_items + 2))
    scores = np.array(values).reshape(m, n_items)
    excluded = np.array(mask).reshape(m, n_items) & (np.arange(m * n_items).reshape(m, n_items) % 3 == 0)
    return scores, excluded, n


def _exclusion(excluded: np.ndarray) -> sp.csr_matrix:
    E = sp.csr_matrix(excluded.astype(np.float32))
    E.sort_indices()
    return E


@settings(max_examples=200, deadline=None)
@given(cases())
def test_topn_dense_matches_sorting(case):
    scores, excluded, n = case
    items, out = topn_dense(scores, n, _exclusion(excluded))
    want_items, want_scores = reference(scores, n, [set(np.flatnonzero(r)) for r in excluded])
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(out, want_scores.astype(np.float32))


@settings(max_examples=200, deadline=None)
@given(cases())
def test_sparse_completion_matches_sorting(case):
    """What a kernel returns (the <= n best non-zero scores, excluded items never) completed to
    n items: unscored items are score 0, between positive and negative scores."""
    scores, excluded, n = case
    masked = np.where(excluded, 0.0, scores)
    rows, cols, vals = [], [], []
    for r, row in enumerate(masked):
        best = sorted((c for c in range(row.size) if row[c] != 0), key=lambda c: (-row[c], c))[:n]
        rows += [r] * len(best)
        cols += best
        vals += [row[c] for c in best]
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=scores.shape[0]))]
    found = sp.csr_matrix((np.array(vals, dtype=np.float32), np.array(cols, dtype=np.int64), indptr),
                          shape=scores.shape)
    items, out = complete_sparse_topn(found, n, _exclusion(excluded), lambda which: scores[which])
    want_items, want_scores = reference(scores, n, [set(np.flatnonzero(r)) for r in excluded])
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(out, want_scores.astype(np.float32))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(1, 15), st.data())
def test_first_free_codes(m, n_items, data):
    blocked = np.array(data.draw(st.lists(st.booleans(), min_size=m * n_items, max_size=m * n_items))).reshape(m, n_items)
    counts = np.array(data.draw(st.lists(st.integers(0, n_items + 1), min_size=m, max_size=m)))
    B = sp.csr_matrix(blocked.astype(np.float32))
    B.sort_indices()
    got = first_free_codes(B, counts)
    for r in range(m):
        free = [c for c in range(n_items) if not blocked[r, c]][:counts[r]]
        assert list(got[r].indices) == free
