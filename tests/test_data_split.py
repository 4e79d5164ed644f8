"""Splits: exact on hand-built tables, folds partition the data, seeded, shared vocabulary."""
from __future__ import annotations

import numpy as np
import pytest

from recforge.data import Interactions, split


def rows_of(inter: Interactions) -> list[tuple]:
    return sorted(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist(),
                      [] if inter.timestamps is None else inter.timestamps.tolist()))


def timeline() -> Interactions:
    # user a: items 1@10, 2@30, 3@20 ; user b: 1@5, 4@5 (tie), 2@7 ; user c: 3@1 (single row)
    u = ["a", "a", "a", "b", "b", "b", "c"]
    i = [1, 2, 3, 1, 4, 2, 3]
    t = [10, 30, 20, 5, 5, 7, 1]
    return Interactions.from_arrays(u, i, np.arange(7, dtype=float), t)


def test_leave_last_out_exact_with_ties():
    train, test = result = split.leave_last_out(timeline(), drop_unseen=False)
    # a's last by time: item 2 @30 ; b's last: item 2 @7 ; c keeps its only row in train
    assert rows_of(test) == [("a", 2, 30), ("b", 2, 7)]
    assert len(train) == 5 and result.report.n_test == 2
    two = split.leave_last_out(timeline(), n=2, drop_unseen=False).test
    # b: 1@5 and 4@5 tie; the later row (4, row 4) counts as later -> {4@5, 2@7}
    # a: {3@20, 2@30}, leaving 1 train row ; c: nothing
    assert rows_of(two) == [("a", 2, 30), ("a", 3, 20), ("b", 2, 7), ("b", 4, 5)]


def test_leave_last_out_without_timestamps_uses_row_order():
    inter = Interactions.from_arrays([1, 1, 1, 2, 2], [5, 6, 7, 5, 6])
    test = split.leave_last_out(inter, drop_unseen=False).test
    assert sorted(zip(test.user_ids[test.users].tolist(), test.item_ids[test.items].tolist())) == [(1, 7), (2, 6)]


def test_temporal_cutoff_and_frac():
    inter = timeline()
    train, test = split.temporal(inter, cutoff=10, drop_unseen=False)
    assert rows_of(test) == [("a", 1, 10), ("a", 2, 30), ("a", 3, 20)]
    assert max(train.timestamps) < 10
    # frac 3/7 -> round(3.0) = 3 latest rows: times 30, 20, 10
    test = split.temporal(inter, frac=3 / 7, drop_unseen=False).test
    assert sorted(test.timestamps.tolist()) == [10, 20, 30]
    with pytest.raises(ValueError, match="exactly one"):
        split.temporal(inter)
    with pytest.raises(ValueError, match="needs timestamps"):
        split.temporal(Interactions.from_arrays([1], [1]), cutoff=3)


def test_unseen_reported_and_dropped():
    # leave-last-out on the timeline: test (a,2) and (b,2); item 2 appears nowhere in train
    result = split.leave_last_out(timeline())
    r = result.report
    assert (r.unseen_users, r.unseen_items, r.unseen_rows, r.dropped_test_rows) == (0, 1, 2, 2)
    assert len(result.test) == 0
    kept = split.leave_last_out(timeline(), drop_unseen=False)
    assert kept.report.unseen_rows == 2 and len(kept.test) == 2


def test_splits_share_vocabulary_and_shape():
    rng = np.random.default_rng(0)
    inter = Interactions.from_arrays(rng.integers(0, 50, 800), rng.integers(0, 70, 800), rng.random(800))
    for train, test in (split.random(inter, 0.3, seed=1), split.random(inter, 0.3, by_user=True, seed=1)):
        assert train.user_ids is inter.user_ids and test.item_ids is inter.item_ids
        assert train.to_csr().shape == test.to_csr().shape == inter.shape


def test_random_sizes_exact_and_seeded():
    inter = Interactions.from_arrays(np.repeat(np.arange(10), 7), np.tile(np.arange(7), 10))
    a = split.random(inter, 0.25, seed=4, drop_unseen=False)
    b = split.random(inter, 0.25, seed=4, drop_unseen=False)
    c = split.random(inter, 0.25, seed=5, drop_unseen=False)
    assert len(a.test) == 18 and len(a.train) == 52  # round(0.25 * 70) = round(17.5) = 18 (half up)
    assert np.array_equal(a.test.users, b.test.users) and np.array_equal(a.test.items, b.test.items)
    assert not (np.array_equal(a.test.users, c.test.users) and np.array_equal(a.test.items, c.test.items))
    per_user = split.random(inter, 0.3, by_user=True, seed=0, drop_unseen=False)
    # every user has 7 rows: round(2.1) = 2 to test
    assert per_user.test.user_counts().tolist() == [2] * 10


def partition_check(inter: Interactions, folds) -> None:
    """Test folds are disjoint and together give every row exactly once; train is the complement."""
    key = inter.users.astype(np.int64) * inter.n_items + inter.items
    seen = []
    for train, test in folds:
        tk = test.users.astype(np.int64) * inter.n_items + test.items
        trk = train.users.astype(np.int64) * inter.n_items + train.items
        assert len(train) + len(test) == len(inter)
        assert not set(tk.tolist()) & set(trk.tolist())
        seen.extend(tk.tolist())
    assert sorted(seen) == sorted(key.tolist())


def test_kfold_partitions_rows():
    rng = np.random.default_rng(2)
    keys = rng.choice(40 * 30, size=503, replace=False)  # distinct pairs, so rows are identifiable
    inter = Interactions.from_arrays(keys // 30, keys % 30, rng.random(503))
    folds = list(split.kfold(inter, 5, seed=3, drop_unseen=False))
    assert [len(t) for _, t in folds] == [101, 101, 101, 100, 100]
    partition_check(inter, folds)
    again = list(split.kfold(inter, 5, seed=3, drop_unseen=False))
    assert all(np.array_equal(x.test.items, y.test.items) for x, y in zip(folds, again))


def test_kfold_drop_unseen_counts_add_up():
    rng = np.random.default_rng(7)
    inter = Interactions.from_arrays(rng.integers(0, 60, 300), rng.integers(0, 200, 300))
    for res in split.kfold(inter, 3, seed=0):
        r = res.report
        assert r.n_test + r.dropped_test_rows == 100  # 300 rows in 3 folds
        assert r.n_train + r.n_test + r.dropped_test_rows == len(inter)


def test_user_kfold_lenskit_style():
    # 12 users with 1..12 rows each (user u has u+1 rows)
    users = np.concatenate([np.full(n + 1, n) for n in range(12)])
    items = np.concatenate([np.arange(n + 1) for n in range(12)])
    inter = Interactions.from_arrays(users, items)
    folds = list(split.user_kfold(inter, 4, holdout=3, seed=1, drop_unseen=False))
    test_users = [set(t.user_ids[t.users].tolist()) for _, t in folds]
    # each user with >= 2 rows is a test user in exactly one fold; the 1-row user (0) never
    all_users = sorted(u for s in test_users for u in s)
    assert all_users == list(range(1, 12))
    for _, test in folds:
        counts = np.bincount(test.users, minlength=12)
        for u in np.flatnonzero(counts):
            assert counts[u] == min(3, u)  # min(holdout, rows - 1); user u has u + 1 rows
    frac = list(split.kfold(inter, 3, by="user", holdout=0.5, seed=0, drop_unseen=False))
    total = sum(len(t) for _, t in frac)
    # per user: clip(round(0.5 * (u + 1)), 1, u) summed over u = 1..11
    assert total == sum(min(max(int(np.floor(0.5 * (u + 1) + 0.5)), 1), u) for u in range(1, 12))


def test_predefined_unifies_vocabularies():
    train = Interactions.from_arrays(["x", "y"], [1, 2])
    test = Interactions.from_arrays(["y", "z"], [2, 3])
    tr, te = result = split.predefined(train, test, drop_unseen=False)
    assert tr.user_ids is te.user_ids and tr.user_ids.to_numpy().tolist() == ["x", "y", "z"]
    assert te.user_ids[te.users].tolist() == ["y", "z"] and te.item_ids[te.items].tolist() == [2, 3]
    assert (result.report.unseen_users, result.report.unseen_items) == (1, 1)
    dropped = split.predefined(train, test)
    assert len(dropped.test) == 1 and dropped.report.dropped_test_rows == 1


def test_split_bad_arguments():
    inter = timeline()
    with pytest.raises(ValueError, match="frac"):
        split.random(inter, 1.5)
    with pytest.raises(TypeError, match="frac"):
        split.random(inter, "half")
    with pytest.raises(ValueError, match="k must be >= 2"):
        split.kfold(inter, 1)
    with pytest.raises(ValueError, match="at least k rows"):
        split.kfold(inter, 8)
    with pytest.raises(ValueError, match="by must be"):
        split.kfold(inter, 2, by="item")
    with pytest.raises(TypeError, match="Interactions"):
        split.leave_last_out([1, 2, 3])
    with pytest.raises(TypeError, match="different types"):
        split.predefined(Interactions.from_arrays([1], [1]), Interactions.from_arrays(["a"], [1]))


def test_leave_last_out_and_by_user_random_against_brute_force():
    rng = np.random.default_rng(11)
    n = 2000
    users, items = rng.integers(0, 80, n), rng.integers(0, 300, n)
    times = rng.integers(0, 50, n)  # many ties
    inter = Interactions.from_arrays(users, items, None, times)
    # brute force: each user's rows ordered by (time, row); the last min(2, count - 1) go to test
    by_user: dict[int, list[tuple[int, int]]] = {}
    for row in range(n):
        by_user.setdefault(int(inter.users[row]), []).append((int(times[row]), row))
    expected = set()
    for rows in by_user.values():
        rows.sort()
        k = min(2, len(rows) - 1)
        expected |= {row for _, row in rows[len(rows) - k:]} if k > 0 else set()
    test = split.leave_last_out(inter, n=2, drop_unseen=False).test
    got_keys = sorted(zip(test.users.tolist(), test.items.tolist(), test.timestamps.tolist()))
    want_keys = sorted((int(inter.users[r]), int(inter.items[r]), int(times[r])) for r in expected)
    assert got_keys == want_keys
    # by-user random: exactly round_half_up(0.3 * count) test rows for every user
    rand = split.random(inter, 0.3, by_user=True, seed=2, drop_unseen=False).test
    counts = np.bincount(inter.users, minlength=inter.n_users)
    assert rand.user_counts().tolist() == [int(np.floor(0.3 * c + 0.5)) for c in counts]


def test_split_results_pickle():
    import pickle
    result = split.leave_last_out(timeline(), drop_unseen=False)
    back = pickle.loads(pickle.dumps(result))
    train, test = back
    assert back.report == result.report
    assert np.array_equal(test.items, result.test.items) and train.user_ids == result.train.user_ids
    assert test.user_ids.code("b") == 1


def test_recommenders_stratified_against_their_rule_by_brute_force():
    # their rule (microsoft/recommenders python_stratified_split), re-derived in plain Python:
    # keys from np.random.seed(seed); np.random.rand(n) in row order, each user's rows by key,
    # the first round(0.75 * count) to train with Python's round (half to even)
    rng = np.random.default_rng(4)
    pairs = [(u, int(i)) for u in range(40) for i in rng.choice(60, size=int(rng.integers(1, 31)), replace=False)]
    order = rng.permutation(len(pairs))
    pairs = [pairs[j] for j in order]
    users, items = zip(*pairs)
    inter = Interactions.from_arrays(list(users), list(items))
    np.random.seed(42)
    keys = np.random.rand(len(pairs))
    by_user: dict[int, list[tuple[float, tuple[int, int]]]] = {}
    for key, pair in zip(keys.tolist(), pairs):
        by_user.setdefault(pair[0], []).append((key, pair))
    want_train, want_test = set(), set()
    for rows in by_user.values():
        rows.sort()
        cut = round(0.75 * len(rows))
        want_train |= {pair for _, pair in rows[:cut]}
        want_test |= {pair for _, pair in rows[cut:]}
    train, test = split.recommenders_stratified(inter, 0.75, seed=42)
    assert set(zip(train.user_ids[train.users].tolist(), train.item_ids[train.items].tolist())) == want_train
    assert set(zip(test.user_ids[test.users].tolist(), test.item_ids[test.items].tolist())) == want_test
    sizes = [len(r) for r in by_user.values()]
    assert len(want_test) > 0 and any(c % 4 == 2 for c in sizes), "half-way cases are exercised"


def test_recommenders_stratified_rounds_half_to_even_and_keeps_unseen_items():
    # users with 2, 6, 10, 26, 4, 1 rows: 0.75 * n = 1.5, 4.5, 7.5, 19.5, 3, 0.75 -> 2, 4, 8, 20, 3, 1 train rows
    counts = [2, 6, 10, 26, 4, 1]
    users = [u for u, c in enumerate(counts) for _ in range(c)]
    items = [100 * u + j for u, c in enumerate(counts) for j in range(c)]  # no item shared: all test items unseen
    result = split.recommenders_stratified(Interactions.from_arrays(users, items), seed=7)
    assert result.train.user_counts().tolist() == [2, 4, 8, 20, 3, 1]
    assert result.test.user_counts().tolist() == [0, 2, 2, 6, 1, 0]
    assert result.report.dropped_test_rows == 0 and result.report.unseen_items == 11
    dropped = split.recommenders_stratified(Interactions.from_arrays(users, items), seed=7, drop_unseen=True)
    assert len(dropped.test) == 0
    with pytest.raises(ValueError, match="ratio"):
        split.recommenders_stratified(Interactions.from_arrays(users, items), 1.5)
    with pytest.raises(TypeError, match="seed"):
        split.recommenders_stratified(Interactions.from_arrays(users, items), seed=None)
