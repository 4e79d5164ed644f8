"""Interactions: codes, id maps both ways, to_csr duplicate policies, sequences, subsets.

References are brute-force Python loops over the rows, written here, never the code under test.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import IdMap, Interactions


def small() -> Interactions:
    # rows: (user, item, rating, time)
    df = pd.DataFrame({"u": ["bob", "ann", "bob", "cat", "ann", "bob"],
                       "i": [30, 10, 10, 20, 30, 30],
                       "r": [4.0, 5.0, 3.0, 2.0, 1.0, 5.0],
                       "t": [5, 1, 2, 9, 3, 1]})
    return Interactions.from_pandas(df, "u", "i", "r", "t")


def test_codes_are_contiguous_int32_in_sorted_id_order():
    inter = small()
    assert inter.users.dtype == np.int32 and inter.items.dtype == np.int32
    assert inter.values.dtype == np.float32 and inter.timestamps.dtype == np.int64
    # sorted ids: ann=0, bob=1, cat=2 ; items 10=0, 20=1, 30=2
    assert inter.user_ids.to_numpy().tolist() == ["ann", "bob", "cat"]
    assert inter.item_ids.to_numpy().tolist() == [10, 20, 30]
    assert inter.users.tolist() == [1, 0, 1, 2, 0, 1]
    assert inter.items.tolist() == [2, 0, 0, 1, 2, 2]
    assert (len(inter), inter.n_users, inter.n_items) == (6, 3, 3)


def test_id_round_trip_both_ways():
    inter = small()
    assert inter.user_ids[inter.users].tolist() == ["bob", "ann", "bob", "cat", "ann", "bob"]
    assert inter.item_ids.codes([30, 10]).tolist() == [2, 0]
    assert inter.user_ids.code("cat") == 2
    assert "ann" in inter.user_ids and "dan" not in inter.user_ids
    with pytest.raises(KeyError, match="unknown"):
        inter.user_ids.codes(["dan"])
    assert inter.user_ids.codes(["dan", "bob"], missing=-1).tolist() == [-1, 1]


def test_id_round_trip_large_random_ids():
    rng = np.random.default_rng(3)
    users = rng.integers(-10**12, 10**12, 5000)
    items = np.array([f"item-{x}" for x in rng.integers(0, 700, 5000)], dtype=object)
    inter = Interactions.from_arrays(users, items)
    assert np.array_equal(inter.user_ids[inter.users], users)
    assert np.array_equal(inter.item_ids[inter.items], items)
    assert np.array_equal(inter.user_ids.codes(users), inter.users)
    assert inter.n_users == len(set(users.tolist())) and inter.n_items == len(set(items.tolist()))


def dense_reference(inter: Interactions, policy: str) -> np.ndarray:
    """Combine repeated pairs by walking the rows in (timestamp, row) order."""
    out = np.zeros(inter.shape)
    seen: dict[tuple[int, int], list[tuple[int, int, float]]] = {}
    for row, (u, i, v) in enumerate(zip(inter.users, inter.items, inter.values)):
        t = inter.timestamps[row] if inter.timestamps is not None else 0
        seen.setdefault((int(u), int(i)), []).append((int(t), row, float(v)))
    for (u, i), entries in seen.items():
        vals = [v for _, _, v in entries]
        if policy == "sum":
            out[u, i] = sum(vals)
        elif policy == "max":
            out[u, i] = max(vals)
        else:
            out[u, i] = max(entries)[2]  # latest (timestamp, row)
    return out


@pytest.mark.parametrize("policy", ["sum", "last", "max"])
def test_to_csr_duplicate_policies_hand_worked(policy):
    inter = small()
    # (bob, 30) appears at t=5 (4.0) and t=1 (5.0): sum 9, max 5, last (t=5) 4
    expected = {"sum": 9.0, "max": 5.0, "last": 4.0}[policy]
    X = inter.to_csr(duplicates=policy)
    assert X.shape == (3, 3) and X.dtype == np.float32 and X.has_canonical_format
    assert X[1, 2] == expected
    assert X[0, 0] == 5.0 and X[0, 2] == 1.0 and X[2, 1] == 2.0 and X[1, 0] == 3.0
    assert X.nnz == 5


def test_to_csr_ones_shape_and_array_values():
    inter = small()
    ones = inter.to_csr(values=False)
    assert ones[1, 2] == 2.0  # two rows for (bob, 30), summed
    assert inter.to_csr(values=False, duplicates="max")[1, 2] == 1.0
    assert inter.to_csr(shape=(5, 7)).shape == (5, 7)
    with pytest.raises(ValueError, match="smaller"):
        inter.to_csr(shape=(2, 3))
    custom = inter.to_csr(values=np.arange(6), duplicates="sum")
    assert custom[1, 2] == 0 + 5
    with pytest.raises(ValueError, match="duplicates"):
        inter.to_csr(duplicates="mean")


def test_to_csr_rejects_nan_values():
    inter = Interactions.from_arrays([1, 2], [1, 2], [1.0, np.nan])
    with pytest.raises(ValueError, match="NaN"):
        inter.to_csr()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5), st.integers(-3, 3), st.integers(0, 4)),
                min_size=1, max_size=60),
       st.sampled_from(["sum", "last", "max"]))
def test_to_csr_matches_brute_force(rows, policy):
    u, i, v, t = (np.array(c) for c in zip(*rows))
    inter = Interactions(u, i, v.astype(np.float32), t, user_ids=IdMap.range(7), item_ids=IdMap.range(6))
    X = inter.to_csr(duplicates=policy)
    assert X.has_canonical_format
    np.testing.assert_allclose(X.toarray(), dense_reference(inter, policy))
    # each distinct pair stored once, even when its value is zero
    assert X.nnz == len({(a, b) for a, b, _, _ in rows})


def test_to_sequences_chronological_with_row_order_ties():
    inter = small()
    seqs = inter.to_sequences()
    # ann: item 10 @t1, item 30 @t3 ; bob: 30 @t1 (row 5), 10 @t2, 30 @t5 ; cat: 20
    assert [s.tolist() for s in seqs] == [[0, 2], [2, 0, 2], [1]]
    indptr, flat = inter.to_sequences(flat=True)
    assert indptr.tolist() == [0, 2, 5, 6] and flat.tolist() == [0, 2, 2, 0, 2, 1]
    tie = Interactions.from_arrays([1, 1, 1], [7, 5, 6], timestamps=[3, 3, 1])
    assert tie.to_sequences()[0].tolist() == [tie.item_ids.code(6), tie.item_ids.code(7), tie.item_ids.code(5)]


def test_subset_keeps_vocabulary_and_compact_renumbers():
    inter = small()
    sub = inter.subset(users=["bob"], items=[30])
    assert len(sub) == 2 and sub.shape == inter.shape
    assert sub.user_ids is inter.user_ids
    by_code = inter.subset(users=[1], items=[2], codes=True)
    assert np.array_equal(by_code.users, sub.users) and np.array_equal(by_code.values, sub.values)
    with pytest.raises(KeyError):
        inter.subset(users=["nobody"])
    compacted = sub.compact()
    assert compacted.shape == (1, 1)
    assert compacted.user_ids.to_numpy().tolist() == ["bob"] and compacted.item_ids.to_numpy().tolist() == [30]


def test_from_csr_round_trip():
    rng = np.random.default_rng(0)
    X = sp.random(20, 15, density=0.3, random_state=1, format="csr", dtype=np.float32)
    inter = Interactions.from_csr(X)
    assert len(inter) == X.nnz and inter.shape == X.shape
    np.testing.assert_array_equal(inter.to_csr().toarray(), X.toarray())
    named = Interactions.from_csr(X, user_ids=[f"u{k}" for k in range(20)], item_ids=rng.permutation(15) + 100)
    assert named.user_ids[3] == "u3"
    with pytest.raises(ValueError, match="entries"):
        Interactions.from_csr(X, user_ids=["a", "b"])
    with pytest.raises(TypeError, match="scipy.sparse"):
        Interactions.from_csr(X.toarray())


def test_pandas_polars_arrow_agree():
    import polars as pl
    import pyarrow as pa
    df = pd.DataFrame({"u": [5, 3, 5, 9], "i": ["x", "y", "y", "x"], "r": [1, 2, 3, 4],
                       "t": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"])})
    a = Interactions.from_pandas(df, "u", "i", "r", "t")
    b = Interactions.from_polars(pl.from_pandas(df), "u", "i", "r", "t")
    c = Interactions.from_arrow(pa.Table.from_pandas(df), "u", "i", "r", "t")
    for other in (b, c):
        assert np.array_equal(a.users, other.users) and np.array_equal(a.items, other.items)
        assert np.array_equal(a.values, other.values) and np.array_equal(a.timestamps, other.timestamps)
        assert a.user_ids == other.user_ids and a.item_ids == other.item_ids
    assert a.timestamps[0] == 1577836800  # 2020-01-01T00:00:00Z in Unix seconds


def test_constructor_validates_codes():
    with pytest.raises(ValueError, match="same length"):
        Interactions([0, 1], [0])
    with pytest.raises(ValueError, match=r"\[0, 2\*\*31\)"):
        Interactions([0, -1], [0, 0])
    with pytest.raises(TypeError, match="integer codes"):
        Interactions([0.5, 1.0], [0, 0])
    with pytest.raises(ValueError, match="vocabulary has only 2"):
        Interactions([0, 2], [0, 0], user_ids=["a", "b"])


def test_importing_data_layer_does_not_import_pandas():
    import subprocess
    import sys
    code = ("import sys, recforge.data, recforge.datasets; "
            "print(sorted(m for m in ('pandas', 'polars', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
