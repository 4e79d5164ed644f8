"""clean(): every step checked exactly on small hand-built tables (working shown in comments)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recforge.data import CleanReport, Interactions, clean


def table(rows, with_time=True) -> Interactions:
    cols = ["u", "i", "r", "t"] if with_time else ["u", "i", "r"]
    df = pd.DataFrame(rows, columns=cols)
    return Interactions.from_pandas(df, "u", "i", "r", "t" if with_time else None)


def as_rows(inter: Interactions):
    out = zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist(), inter.values.tolist())
    return [(u, i, round(v, 6)) for u, i, v in out]


def test_non_finite_and_out_of_range():
    inter = table([(1, 1, 4.0, 1), (1, 2, np.nan, 2), (2, 1, np.inf, 3), (2, 2, 6.0, 4), (3, 1, 0.0, 5)])
    out, report = clean(inter, rating_range=(0.5, 5))
    # NaN and inf: 2 rows; 6.0 and 0.0 outside [0.5, 5]: 2 rows
    assert (report.non_finite, report.out_of_range, report.n_output) == (2, 2, 1)
    assert as_rows(out) == [(1, 1, 4.0)]
    assert report.dropped["non_finite"] == 2 and "out_of_range=2" in str(report)


@pytest.mark.parametrize("policy, expected", [
    # (1, 10) has rows: 2.0 @t3, 5.0 @t1, 2.0 @t3 (exact copy of the first), 4.0 @t2
    ("last", 2.0),       # latest timestamp is 3 -> 2.0
    ("first", 5.0),      # earliest timestamp is 1 -> 5.0
    ("mean", 11 / 3),    # after the exact copy goes: (2 + 5 + 4) / 3
    ("max", 5.0),
    ("sum", 11.0),
])
def test_duplicate_policies(policy, expected):
    inter = table([(1, 10, 2.0, 3), (2, 10, 1.0, 1), (1, 10, 5.0, 1), (1, 10, 2.0, 3), (1, 10, 4.0, 2)])
    out, report = clean(inter, duplicates=policy)
    assert report.exact_duplicates == 1 and report.repeated_pairs == 2
    rows = dict(((u, i), v) for u, i, v in as_rows(out))
    assert rows[(1, 10)] == pytest.approx(expected, rel=1e-6) and rows[(2, 10)] == 1.0
    assert len(out) == 2


def test_keep_repeated_pairs():
    inter = table([(1, 10, 2.0, 3), (1, 10, 5.0, 1)])
    out, report = clean(inter, duplicates=None)
    assert len(out) == 2 and report.repeated_pairs == 0


def test_merged_row_takes_latest_timestamp_and_keeps_row_order():
    inter = table([(7, 1, 1.0, 50), (5, 2, 3.0, 10), (7, 1, 3.0, 20)])
    out, _ = clean(inter, duplicates="mean")
    # (7,1) merged: mean 2.0, time max(50, 20) = 50, placed at its latest row (row 0, t=50)
    assert as_rows(out) == [(7, 1, 2.0), (5, 2, 3.0)]
    assert out.timestamps.tolist() == [50, 10]


def test_iterative_kcore_exact():
    # users a..d, items 1..4. With min 2 per user and per item:
    # round 1: item 4 has 1 row (d) -> drop (d,4); user c has 1 row -> drop (c,3)
    # round 2: item 3 now has 1 row (d,3) -> drop; user d then has 0 rows.
    #          remaining a:{1,2}, b:{1,2} -> everyone has 2. Stable after 2 removal rounds.
    rows = [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 3), ("d", 3), ("d", 4)]
    inter = Interactions.from_arrays([u for u, _ in rows], [i for _, i in rows], np.ones(len(rows)))
    out, report = clean(inter, min_user_count=2, min_item_count=2)
    assert sorted(zip(out.user_ids[out.users].tolist(), out.item_ids[out.items].tolist())) == \
        [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert (report.kcore_rows, report.kcore_users, report.kcore_items, report.kcore_rounds) == (3, 2, 2, 2)
    assert out.shape == (2, 2)  # compacted
    kept, _ = clean(inter, min_user_count=2, min_item_count=2, compact=False)
    assert kept.shape == (4, 4)


def test_kcore_brute_force_on_random_table():
    rng = np.random.default_rng(5)
    u, i = rng.integers(0, 40, 600), rng.integers(0, 30, 600)
    inter = Interactions.from_arrays(u, i, np.ones(600))
    out, _ = clean(inter, duplicates="last", min_user_count=5, min_item_count=4)
    pairs = set(zip(u.tolist(), i.tolist()))
    while True:  # brute force: repeatedly remove pairs of under-count users/items
        uc, ic = {}, {}
        for a, b in pairs:
            uc[a] = uc.get(a, 0) + 1
            ic[b] = ic.get(b, 0) + 1
        keep = {(a, b) for a, b in pairs if uc[a] >= 5 and ic[b] >= 4}
        if keep == pairs:
            break
        pairs = keep
    got = set(zip(out.user_ids[out.users].tolist(), out.item_ids[out.items].tolist()))
    assert got == pairs and len(got) > 0


def test_implicit_threshold():
    inter = table([(1, 1, 4.0, 1), (1, 2, 3.5, 2), (2, 1, 5.0, 3)])
    out, report = clean(inter, implicit_threshold=4)
    assert report.below_threshold == 1 and as_rows(out) == [(1, 1, 1.0), (2, 1, 1.0)]


def test_per_user_normalisation():
    # user 1: ratings 1, 2, 3 -> mean 2, population std sqrt(2/3), min 1, max 3
    # user 2: ratings 4, 4 -> constant
    inter = table([(1, 1, 1.0, 1), (1, 2, 2.0, 1), (1, 3, 3.0, 1), (2, 1, 4.0, 1), (2, 2, 4.0, 1)])
    mean, rep = clean(inter, normalize="mean")
    assert mean.values.tolist() == [-1.0, 0.0, 1.0, 0.0, 0.0]
    z, rep = clean(inter, normalize="zscore")
    s = np.sqrt(2 / 3)
    np.testing.assert_allclose(z.values, [-1 / s, 0, 1 / s, 0, 0], rtol=1e-6)
    mm, rep = clean(inter, normalize="minmax")
    np.testing.assert_allclose(mm.values, [0.0, 0.5, 1.0, 0.5, 0.5])
    # the report inverts the transform: v = normalized * scale + offset
    np.testing.assert_allclose(mm.values * rep.user_scale[mm.users] + rep.user_offset[mm.users], inter.values)


def test_clean_bad_arguments():
    inter = Interactions.from_arrays([1, 2], [1, 2])
    with pytest.raises(ValueError, match="rating_range needs values"):
        clean(inter, rating_range=(1, 5))
    with pytest.raises(ValueError, match="duplicates"):
        clean(inter, duplicates="median")
    with pytest.raises(ValueError, match="min_user_count"):
        clean(inter, min_user_count=0)
    with pytest.raises(TypeError, match="Interactions"):
        clean([1, 2])
    valued = Interactions.from_arrays([1], [1], [3.0])
    with pytest.raises(ValueError, match="low <= high"):
        clean(valued, rating_range=(5, 1))
    assert isinstance(clean(valued)[1], CleanReport)
