"""Leave-one-out evaluation: the split, S3-Rec's fixed negatives, ranks under both full-ranking
conventions and under sampled negatives.

References: hand-made sequences, a line-by-line re-statement of S3-Rec's ``generate_test.py``
procedure (global ``np.random.seed`` and ``np.random.choice`` on a Python list), and ranks
counted directly from a known score matrix.
"""
from __future__ import annotations

import numpy as np
import pytest

from recforge.evaluation.leave_one_out import (evaluate_leave_one_out, fixed_negatives, full_ranks, leave_one_out,
                                               sampled_ranks)


def test_split_by_hand():
    split = leave_one_out([[4, 5, 6, 7], [1, 2], [3]], n_items=8)
    assert [s.tolist() for s in split.train_sequences()] == [[4, 5], [], []]
    assert split.users("valid").tolist() == [0] and split.users("test").tolist() == [0, 1]
    assert [h.tolist() for h in split.histories("valid", np.array([0]))] == [[4, 5]]
    assert split.targets("valid", np.array([0])).tolist() == [6]
    assert [h.tolist() for h in split.histories("test", np.array([0, 1]))] == [[4, 5, 6], [1]]
    assert split.targets("test", np.array([0, 1])).tolist() == [7, 2]
    with pytest.raises(ValueError, match="stage"):
        split.users("train")
    with pytest.raises(ValueError, match="item codes outside"):
        leave_one_out([[0, 9]], n_items=5)


def test_split_of_interactions_follows_timestamps():
    from recforge.data import Interactions

    inter = Interactions(np.array([0, 0, 0, 1, 1]), np.array([2, 0, 1, 3, 1]), None, np.array([3, 1, 2, 0, 1]))
    split = leave_one_out(inter)
    assert [s.tolist() for s in split.sequences] == [[0, 1, 2], [3, 1]]
    train = split.train_interactions()
    assert train.to_sequences()[0].tolist() == [0] and train.n_items == 4


def s3rec_reference(sequences_by_id, test_num, seed=12345):
    """generate_test.py's procedure, restated: ids, first-appearance item list, global RNG."""
    np.random.seed(seed)
    item_count = {}
    for items in sequences_by_id:
        for item in items:
            item_count[item] = item_count.get(item, 0) + 1
    all_item = list(item_count.keys())
    result = []
    for user_seq in sequences_by_id:
        test_samples = []
        while len(test_samples) < test_num:
            sample_ids = np.random.choice(all_item, test_num, replace=False)
            test_samples.extend(int(i) for i in sample_ids if i not in user_seq)
        result.append(test_samples[:test_num])
    return result


def test_fixed_negatives_reproduce_the_s3rec_procedure():
    rng = np.random.default_rng(5)
    seqs = [rng.choice(30, size=rng.integers(3, 20), replace=False) for _ in range(40)]
    got = fixed_negatives(seqs, 30, n_negatives=8, seed=12345)
    want = s3rec_reference([s.tolist() for s in seqs], 8)
    assert got.tolist() == want
    for row, s in zip(got, seqs):
        assert not set(row.tolist()) & set(s.tolist())


def test_fixed_negatives_properties():
    seqs = [np.arange(10), np.array([0, 1]), np.array([3])]
    neg = fixed_negatives(seqs, 10, n_negatives=4, seed=1, item_order=np.arange(10))
    assert neg.shape == (3, 4)
    assert (neg[0] == -1).all(), "a user who has every item gets no negatives"
    for row, s in zip(neg[1:], seqs[1:]):
        assert (row >= 0).all() and not set(row.tolist()) & set(s.tolist())
    np.testing.assert_array_equal(neg, fixed_negatives(seqs, 10, n_negatives=4, seed=1, item_order=np.arange(10)))


class MatrixModel:
    """A recommender over a fixed (user x item) score matrix, ranked by plain sorting."""

    def __init__(self, S):
        self.S = np.asarray(S, dtype=np.float32)

    def recommend(self, users, n=10, *, exclude_seen=True, history=None):
        out = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), -np.inf, dtype=np.float32)
        for r, u in enumerate(users):
            items = [j for j in range(self.S.shape[1]) if not (exclude_seen and j in set(history[r].tolist()))]
            items.sort(key=lambda j: (-self.S[u, j], j))
            out[r, :len(items[:n])] = items[:n]
            scores[r, :len(items[:n])] = self.S[u, items[:n]]
        return out, scores


def direct_rank(S_row, target, history, convention):
    s = S_row.astype(np.float64).copy()
    hist = set(history.tolist())
    if convention == "zero":
        for j in hist:
            s[j] = 0.0
        candidates = range(s.size)
    else:
        if target in hist:
            return None
        candidates = [j for j in range(s.size) if j not in hist]
    return sum(1 for j in candidates if j != target and (s[j] > s[target] or (s[j] == s[target] and j < target)))


@pytest.mark.parametrize("convention", ["exclude", "zero"])
def test_full_ranks_equal_direct_counts(convention):
    rng = np.random.default_rng(2)
    n_users, n_items = 25, 15
    seqs = [rng.integers(0, n_items, rng.integers(2, 9)) for _ in range(n_users)]
    S = rng.normal(size=(n_users, n_items))
    S[:, 3] = 0.0                                    # ties with history items scored 0
    split = leave_one_out(seqs, n_items=n_items)
    k = 6
    users, ranks = full_ranks(MatrixModel(S), split, "test", convention, k=k, chunk=4)
    for u, r in zip(users, ranks):
        hist, target = split.histories("test", [u])[0], split.targets("test", np.array([u]))[0]
        want = direct_rank(S[u], target, hist, convention)
        assert r == (k if want is None else min(want, k)), (u, convention)


def test_sampled_ranks_and_metrics():
    S = np.array([[0.9, 0.1, 0.5, 0.7, 0.2, 0.3]])
    split = leave_one_out([[4, 5, 2]], n_items=6)           # test target 2 (score 0.5)
    negatives = np.array([[0, 1, 3]])                       # 0.9, 0.1, 0.7 -> two above
    model = MatrixModel(S)
    model.score_histories = lambda hist, items: S[0][items]
    users, ranks = sampled_ranks(model, split, "test", negatives)
    assert ranks.tolist() == [2]
    rows = evaluate_leave_one_out(model, split, ks=(1, 3), protocols=("sampled",), negatives=negatives)
    values = {r["metric"]: r["value"] for r in rows}
    assert values["hit_rate@1"] == 0 and values["hit_rate@3"] == 1
    assert values["ndcg@3"] == pytest.approx(1 / np.log2(4)) and values["mrr"] == pytest.approx(1 / 3)
    assert all(r["protocol"] == "leave-one-out sampled (3 fixed negatives per user, given)" for r in rows)


def test_sampled_without_score_histories_uses_recommend():
    rng = np.random.default_rng(4)
    seqs = [rng.integers(0, 12, rng.integers(3, 7)) for _ in range(10)]
    S = rng.normal(size=(10, 12))
    split = leave_one_out(seqs, n_items=12)
    negatives = fixed_negatives(split.sequences, 12, n_negatives=5, seed=3)
    plain = MatrixModel(S)
    assert not hasattr(plain, "score_histories")
    users, slow_ranks = sampled_ranks(plain, split, "test", negatives)
    for u, r in zip(users, slow_ranks):
        t = split.targets("test", np.array([u]))[0]
        cand = negatives[u]
        assert r == sum(1 for j in cand if S[u, j] > S[u, t] or (S[u, j] == S[u, t] and j < t))


def test_every_row_names_its_protocol():
    rng = np.random.default_rng(6)
    seqs = [rng.integers(0, 10, 5) for _ in range(8)]
    split = leave_one_out(seqs, n_items=10)
    model = MatrixModel(rng.normal(size=(8, 10)))
    rows = evaluate_leave_one_out(model, split, stage="valid", seen=("exclude", "zero"), n_negatives=3)
    labels = {r["protocol"] for r in rows}
    assert labels == {"leave-one-out full ranking (history excluded)", "leave-one-out full ranking (history scored 0)",
                      "leave-one-out sampled (3 fixed negatives per user, seed 12345)"}
    assert all(r["stage"] == "valid" and r["n_users"] == 8 for r in rows)
    with pytest.raises(ValueError, match="protocols"):
        evaluate_leave_one_out(model, split, protocols=("loo",))
