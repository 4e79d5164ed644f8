"""ItemKNN's lean recommend path (a few stored users, kernel on raw CSR slices) against the
general path (scipy matrices, ``LEAN_USERS = 0``) and against a brute-force ranking of the
dense scores R S_k: ties, padding, exclusion, filter_items, negative and zero scores, empty
histories, n larger than the catalogue."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from recforge.models import ItemKNN
from recforge.models import base as base_module
from recforge.models.stored_rows import exclusion_arrays, gather_rows, is_canonical


@st.composite
def cases(draw):
    n_users = draw(st.integers(1, 9))
    n_items = draw(st.integers(1, 12))
    # small integers (negative ones too) with metric="dot": every score is exact in float32,
    # so the reference ranking (float64) must agree exactly, ties included
    dense = np.asarray(draw(st.lists(st.lists(st.sampled_from([0, 0, 0, 1, 1, 2, 3, -1]), min_size=n_items,
                                              max_size=n_items), min_size=n_users, max_size=n_users)),
                       dtype=np.float32)
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, n_items + 3))
    exclude_seen = draw(st.booleans())
    filtered = draw(st.lists(st.integers(0, n_items - 1), max_size=4))
    return dense, k, n, exclude_seen, (np.asarray(filtered, dtype=np.int64) if filtered else None)


def reference_topn(scores: np.ndarray, n: int, excluded: set) -> tuple[list, list]:
    """Higher score first, ties by smaller code, excluded items never, padded with -1 / -inf."""
    candidates = sorted((i for i in range(scores.size) if i not in excluded), key=lambda i: (-scores[i], i))[:n]
    items = candidates + [-1] * (n - len(candidates))
    return items, [scores[i] for i in candidates] + [-np.inf] * (n - len(candidates))


def fitted(dense: np.ndarray, k: int) -> ItemKNN:
    return ItemKNN(k=k, similarity="dot", progress=False, num_threads=1).fit(sp.csr_matrix(dense))


@settings(max_examples=50, deadline=None)
@given(cases())
def test_lean_path_equals_general_path_and_brute_force(case):
    dense, k, n, exclude_seen, filtered = case
    model = fitted(dense, k)
    assert model._lean_rows
    m = dense.shape[0]
    users = np.arange(m)
    lean = [model.recommend([u], n, exclude_seen=exclude_seen, filter_items=filtered) for u in users]
    lean_batch = model.recommend(users, n, exclude_seen=exclude_seen, filter_items=filtered)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base_module, "LEAN_USERS", 0)
        general = model.recommend(users, n, exclude_seen=exclude_seen, filter_items=filtered)
    np.testing.assert_array_equal(np.vstack([items for items, _ in lean]), general[0])
    np.testing.assert_array_equal(np.vstack([scores for _, scores in lean]), general[1])
    np.testing.assert_array_equal(lean_batch[0], general[0])
    np.testing.assert_array_equal(lean_batch[1], general[1])
    # brute force: dense scores R S_k, ranked by hand
    scores = dense.astype(np.float64) @ model.similarity_.toarray().astype(np.float64)
    blocked = set() if filtered is None else set(filtered.tolist())
    for u in users:
        excluded = blocked | (set(np.flatnonzero(dense[u]).tolist()) if exclude_seen else set())
        want_items, want_scores = reference_topn(scores[u], n, excluded)
        assert general[0][u].tolist() == want_items
        np.testing.assert_array_equal(general[1][u], np.asarray(want_scores, dtype=np.float32))


def test_lean_path_with_ids_and_a_user_without_history():
    dense = np.array([[1, 0, 2, 0], [0, 0, 0, 0], [0, 3, 1, 1]], dtype=np.float32)
    model = fitted(dense, 2)
    items, scores = model.recommend([1], 6)           # empty history: every item scores 0, then padding
    assert items[0].tolist() == [0, 1, 2, 3, -1, -1]
    np.testing.assert_array_equal(scores[0], [0, 0, 0, 0, -np.inf, -np.inf])
    by_id = model.recommend(model.user_ids_.to_numpy()[[2]], 3, ids=True)
    by_code = model.recommend([2], 3)                  # items 1..3 seen: item 0, then padding
    assert by_code[0][0].tolist() == [0, -1, -1]
    np.testing.assert_array_equal(by_id[0], [[model.item_ids_.to_numpy()[0], -1, -1]])
    np.testing.assert_array_equal(by_id[1], by_code[1])


def test_bad_arguments_are_refused_on_the_lean_path_too():
    model = fitted(np.array([[1, 0, 2], [0, 1, 1]], dtype=np.float32), 2)
    with pytest.raises(ValueError, match="users holds codes outside"):
        model.recommend([5], 2)
    with pytest.raises(ValueError, match="filter_items holds codes outside"):
        model.recommend([0], 2, filter_items=[7])
    with pytest.raises(ValueError, match="n"):
        model.recommend([0], 0)


@pytest.mark.parametrize("matrix, canonical", [
    (sp.csr_matrix(np.array([[1, 0, 2], [0, 0, 3]], dtype=np.float32)), True),
    (sp.csr_matrix((np.ones(2, np.float32), [2, 0], [0, 2, 2]), shape=(2, 3)), False),     # unsorted
    (sp.csr_matrix((np.ones(2, np.float32), [1, 1], [0, 2, 2]), shape=(2, 3)), False),     # duplicate
    (sp.csr_matrix((np.array([1, 0], np.float32), [0, 1], [0, 2, 2]), shape=(2, 3)), False),  # stored 0
    (sp.csr_matrix((np.array([1, np.nan], np.float32), [0, 1], [0, 1, 2]), shape=(2, 3)), False),
    (sp.csr_matrix(np.array([[1, 0, 2]], dtype=np.float64)), False),                       # float64
    (sp.csr_matrix((3, 4), dtype=np.float32), True),
    # rows ending and starting: index 2 then 0 across a row boundary is fine
    (sp.csr_matrix((np.ones(3, np.float32), [1, 2, 0], [0, 2, 3]), shape=(2, 3)), True),
])
def test_is_canonical(matrix, canonical):
    assert is_canonical(matrix) is canonical


def test_a_non_canonical_stored_matrix_takes_the_general_path():
    model = fitted(np.array([[1, 0, 2, 1], [0, 1, 1, 0], [2, 1, 0, 0]], dtype=np.float32), 2)
    want = model.recommend([0, 1, 2], 3)
    R = model.user_items_
    rows = [R.indices[R.indptr[r]:R.indptr[r + 1]][::-1] for r in range(3)]
    vals = [R.data[R.indptr[r]:R.indptr[r + 1]][::-1] for r in range(3)]
    model.user_items_ = sp.csr_matrix((np.concatenate(vals), np.concatenate(rows), R.indptr), shape=R.shape)
    model._prepare()
    assert not model._lean_rows
    for u in range(3):
        got = model.recommend([u], 3)
        np.testing.assert_array_equal(got[0][0], want[0][u])
        np.testing.assert_array_equal(got[1][0], want[1][u])


def test_gather_and_exclusion_arrays_by_hand():
    R = sp.csr_matrix(np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 4, 0]], dtype=np.float32))
    indptr, indices, data = gather_rows(R, np.array([2, 1, 0]))
    assert indptr.tolist() == [0, 2, 2, 4] and indices.tolist() == [0, 2, 1, 3] and data.tolist() == [3, 4, 1, 2]
    ep, ei = exclusion_arrays(indptr, indices, np.array([1, 2]), True)
    assert ep.tolist() == [0, 3, 5, 8] and ei.tolist() == [0, 1, 2, 1, 2, 1, 2, 3]
    ep, ei = exclusion_arrays(indptr, indices, np.array([3]), False)
    assert ep.tolist() == [0, 1, 2, 3] and ei.tolist() == [3, 3, 3]
    assert exclusion_arrays(indptr, indices, None, False) is None
    assert exclusion_arrays(indptr, indices, np.empty(0, np.int64), False) is None
