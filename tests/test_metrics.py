"""recforge.evaluation.metrics: hand-worked examples, loop-based references, scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.evaluation import metrics as M

from evaluation_helpers import ref_user

LOG2_3 = math.log2(3)  # discount of rank 2 is 1/log2(3); rank 1: 1/log2(2) = 1; rank 3: 1/log2(4) = 1/2


def csr(rows: list[dict[int, float]], n_items: int) -> sp.csr_matrix:
    data, indices, indptr = [], [], [0]
    for row in rows:
        for item, value in sorted(row.items()):
            indices.append(item)
            data.append(value)
        indptr.append(len(indices))
    return sp.csr_matrix((np.array(data, float), np.array(indices), np.array(indptr)), shape=(len(rows), n_items))


# ----------------------------------------------------------------------------- hand-worked

# k = 4, 10 items.
#   user 0: [5, 2, 7, 2, 9]  relevant {2, 4, 9}: top-4 = 5 miss, 2 HIT (rank 2), 7 miss, 2 repeat -> miss
#   user 1: [0, 1, -1, -1, -1] relevant {0, 1}: hits at ranks 1 and 2, padding misses
#   user 2: [3, 4, 5, 6, 7]  relevant {}: left out of every mean
#   user 3: [8, 6, 3, 1, 0]  relevant {0}: 0 is at rank 5 > k -> no hit
HAND_REC = np.array([[5, 2, 7, 2, 9], [0, 1, -1, -1, -1], [3, 4, 5, 6, 7], [8, 6, 3, 1, 0]])
HAND_REL = csr([{2: 1, 4: 1, 9: 1}, {0: 1, 1: 1}, {}, {0: 1}], 10)
K = 4
# user 0: P = 1/4, R = 1/3, F1 = 2(1/4)(1/3)/(1/4+1/3) = (1/6)/(7/12) = 2/7
#         DCG = 1/log2(3); IDCG over min(4, 3) = 3 ranks = 1 + 1/log2(3) + 1/2
#         MAP = (1/min(4,3)) * precision@2 = (1/3)(1/2) = 1/6; MRR = 1/2
# user 1: P = 2/4, R = 1, F1 = 2(.5)(1)/1.5 = 2/3, NDCG = 1, MAP = (1/2)(1/1 + 2/2) = 1, MRR = 1
# user 3: everything 0
NDCG_U0 = (1 / LOG2_3) / (1 + 1 / LOG2_3 + 0.5)
HAND_EXPECTED = {
    M.precision_at_k: (0.25 + 0.5 + 0) / 3,          # = 0.25
    M.recall_at_k: (1 / 3 + 1 + 0) / 3,               # = 4/9
    M.f1_at_k: (2 / 7 + 2 / 3 + 0) / 3,               # = 20/63
    M.hit_rate_at_k: (1 + 1 + 0) / 3,                 # = 2/3
    M.ndcg_at_k: (NDCG_U0 + 1 + 0) / 3,               # = (0.296082 + 1) / 3
    M.map_at_k: (1 / 6 + 1 + 0) / 3,                  # = 7/18
    M.mrr_at_k: (0.5 + 1 + 0) / 3,                    # = 1/2
}


@pytest.mark.parametrize("metric", list(HAND_EXPECTED), ids=lambda f: f.__name__)
def test_hand_worked_ranking(metric):
    assert metric(HAND_REC, HAND_REL, K) == pytest.approx(HAND_EXPECTED[metric], abs=1e-12)


def test_hand_worked_per_user_leaves_users_without_relevant_items_out():
    per = M.recall_at_k(HAND_REC, HAND_REL, K, per_user=True)
    assert per[0] == pytest.approx(1 / 3) and per[1] == 1 and np.isnan(per[2]) and per[3] == 0


def test_hand_worked_graded_ndcg():
    # k = 3, list [1, 0, 2], relevance {0: 3, 1: 1, 4: 2}
    # DCG = 1/log2(2) (item 1, gain 1) + 3/log2(3) (item 0, gain 3) + 0 (item 2 is not relevant)
    # IDCG = gains 3, 2, 1 at ranks 1..3 = 3 + 2/log2(3) + 1/2
    rel = csr([{0: 3, 1: 1, 4: 2}], 5)
    expected = (1 + 3 / LOG2_3) / (3 + 2 / LOG2_3 + 0.5)
    assert M.ndcg_at_k(np.array([[1, 0, 2]]), rel, 3) == pytest.approx(expected)


def test_idcg_cut_at_k_not_at_relevant_count():
    # 5 relevant items, k = 2, both places hit: DCG = IDCG = 1 + 1/log2(3) -> NDCG 1; recall 2/5; MAP = 1
    rel = csr([{i: 1 for i in range(5)}], 8)
    rec = np.array([[3, 4]])
    assert M.ndcg_at_k(rec, rel, 2) == pytest.approx(1.0)
    assert M.recall_at_k(rec, rel, 2) == pytest.approx(0.4)
    assert M.map_at_k(rec, rel, 2) == pytest.approx(1.0)


def test_k_beyond_list_length_counts_as_padding():
    # list of 2 items, k = 5: precision = hits/k = 1/5, not 1/2
    rel = csr([{1: 1}], 4)
    assert M.precision_at_k(np.array([[1, 2]]), rel, 5) == pytest.approx(0.2)


def test_auc_hand_worked():
    # positives 0.9 and 0.3, negatives 0.8, 0.3, 0.1: pairs won = 3 (0.9 beats all)
    # + 1.5 (0.3 beats 0.1, ties 0.3 = 1/2, loses to 0.8); AUC = 4.5 / (2 * 3) = 0.75
    assert M.auc([1, 0, 1, 0, 0], [0.9, 0.8, 0.3, 0.3, 0.1]) == pytest.approx(0.75)


def test_auc_groups_hand_worked():
    # group a: pos 2 > neg 1 -> 1;  group b: pos 0 < neg 5 -> 0;  group c: only positives -> left out
    y, s, g = [1, 0, 1, 0, 1], [2, 1, 0, 5, 3], ["a", "a", "b", "b", "c"]
    assert M.auc(y, s, g) == pytest.approx(0.5)
    per = M.auc(y, s, g, per_group=True)
    assert per[:2].tolist() == [1.0, 0.0] and np.isnan(per[2])


def test_rmse_mae_hand_worked():
    # errors -0.5, 0, 1: squares 0.25, 0, 1 -> RMSE = sqrt(1.25/3); MAE = 1.5/3
    assert M.rmse([3, 4, 5], [2.5, 4, 6]) == pytest.approx(math.sqrt(1.25 / 3))
    assert M.mae([3, 4, 5], [2.5, 4, 6]) == pytest.approx(0.5)


def test_coverage_and_gini_hand_worked():
    rec = np.array([[0, 1, -1], [1, 2, 2]])
    # distinct items {0, 1, 2} of 5 -> 0.6
    assert M.coverage(rec, 5) == pytest.approx(0.6)
    # exposure (a repeat counts once per list): item0 1, item1 2, item2 1, items 3,4 0 -> sorted [0,0,1,1,2]
    # sum (2i - n - 1) x_i = (2*3-6)*1 + (2*4-6)*1 + (2*5-6)*2 = 0 + 2 + 8 = 10; G = 10 / (5 * 4) = 0.5
    assert M.gini(rec, 5) == pytest.approx(0.5)
    # k = 1: items {0, 1} -> coverage 2/5; exposure [1,1,0,0,0] sorted [0,0,0,1,1]: (2*4-6) + (2*5-6) = 6 -> 6/10
    assert M.coverage(rec, 5, k=1) == pytest.approx(0.4)
    assert M.gini(rec, 5, k=1) == pytest.approx(0.6)


def test_novelty_and_popularity_hand_worked():
    # 4 train users; item users: item0 4, item1 2, item2 1, item3 0 (counted as 1)
    train = csr([{0: 1, 1: 1, 2: 1}, {0: 1, 1: 1}, {0: 1}, {0: 1}], 4)
    rec = np.array([[0, 1], [2, 3]])
    # self-information -log2(users/4): item0 0, item1 1, item2 2, item3 2 -> lists 0.5 and 2 -> 1.25
    assert M.novelty(rec, train) == pytest.approx(1.25)
    # popularity: lists (4 + 2)/2 = 3 and (1 + 0)/2 = 0.5 -> 1.75
    assert M.average_popularity(rec, train) == pytest.approx(1.75)


def test_diversity_hand_worked():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # [0,1,2]: cos = 0, 1/sqrt2, 1/sqrt2 -> ILD = 1 - sqrt2/3;  [0, 0, -1]: one distinct item -> left out
    # [0, 2]: ILD = 1 - 1/sqrt2
    rec = np.array([[0, 1, 2], [0, 0, -1], [0, 2, -1]])
    expected = ((1 - math.sqrt(2) / 3) + (1 - 1 / math.sqrt(2))) / 2
    assert M.diversity(rec, item_vectors=vectors) == pytest.approx(expected)
    # similarity matrix, asymmetric S01 = .2, S10 = .4 -> .3; S12 = S21 = .5; S02 missing -> 0
    S = sp.csr_matrix(np.array([[0, 0.2, 0], [0.4, 0, 0.5], [0, 0.5, 0]]))
    assert M.diversity(np.array([[0, 1, 2]]), similarity=S) == pytest.approx(1 - 0.8 / 3)


# ----------------------------------------------------------------------------- loop references

FUNCS = {"precision": M.precision_at_k, "recall": M.recall_at_k, "f1": M.f1_at_k, "hit_rate": M.hit_rate_at_k,
         "ndcg": M.ndcg_at_k, "map": M.map_at_k, "mrr": M.mrr_at_k}


def random_case(rng, n_users=60, n_items=40, width=15, graded=True):
    rec = rng.integers(-1, n_items, size=(n_users, width))  # includes padding and repeats
    rel = sp.random(n_users, n_items, density=0.1, random_state=rng, format="csr")
    rel.data = rng.integers(1, 4, size=rel.nnz).astype(float) if graded else np.ones(rel.nnz)
    return rec, rel


@pytest.mark.parametrize("k", [1, 5, 15, 20])
def test_random_against_loop_reference(k):
    rng = np.random.default_rng(k)
    rec, rel = random_case(rng)
    rows = [dict(zip(rel[u].indices.tolist(), rel[u].data.tolist())) for u in range(rel.shape[0])]
    users = [u for u in range(rel.shape[0]) if rows[u]]
    for name, func in FUNCS.items():
        expected = np.mean([ref_user(rec[u].tolist(), rows[u], k)[name] for u in users])
        assert func(rec, rel, k) == pytest.approx(expected, rel=1e-12, abs=1e-12), name


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2 ** 31 - 1))
def test_property_against_loop_reference(k, seed):
    rng = np.random.default_rng(seed)
    rec, rel = random_case(rng, n_users=int(rng.integers(1, 8)), n_items=int(rng.integers(1, 12)),
                           width=int(rng.integers(1, 10)))
    rows = [dict(zip(rel[u].indices.tolist(), rel[u].data.tolist())) for u in range(rel.shape[0])]
    users = [u for u in range(rel.shape[0]) if rows[u]]
    if not users:
        with pytest.raises(ValueError, match="no user has a relevant item"):
            M.ndcg_at_k(rec, rel, k)
        return
    for name, func in FUNCS.items():
        per = func(rec, rel, k, per_user=True)
        for u in range(rel.shape[0]):
            if rows[u]:
                assert per[u] == pytest.approx(ref_user(rec[u].tolist(), rows[u], k)[name], abs=1e-12), name
            else:
                assert np.isnan(per[u])


def test_beyond_accuracy_against_loop_reference():
    rng = np.random.default_rng(3)
    n_items, k = 30, 6
    rec = rng.integers(-1, n_items, size=(50, 10))
    train = sp.random(40, n_items, density=0.15, random_state=rng, format="csr")
    vectors = rng.normal(size=(n_items, 5))
    S = sp.random(n_items, n_items, density=0.3, random_state=rng, format="csr")
    users_of = np.asarray((train != 0).sum(axis=0)).ravel()

    lists = [list(dict.fromkeys(i for i in row[:k] if i != -1)) for row in rec.tolist()]  # distinct, in order
    shown = set(i for lst in lists for i in lst)
    assert M.coverage(rec, n_items, k) == pytest.approx(len(shown) / n_items)

    counts = sorted(sum(i in lst for lst in lists) for i in range(n_items))
    mean_abs_diff = sum(abs(a - b) for a in counts for b in counts) / (n_items ** 2)
    assert M.gini(rec, n_items, k) == pytest.approx(mean_abs_diff / (2 * np.mean(counts)))  # Gini via mean |xi-xj|

    nov = [np.mean([-math.log2(max(users_of[i], 1) / 40) for i in lst]) for lst in lists if lst]
    assert M.novelty(rec, train, k) == pytest.approx(np.mean(nov))
    arp = [np.mean([users_of[i] for i in lst]) for lst in lists if lst]
    assert M.average_popularity(rec, train, k) == pytest.approx(np.mean(arp))

    def cos(a, b):
        return vectors[a] @ vectors[b] / (np.linalg.norm(vectors[a]) * np.linalg.norm(vectors[b]))

    Sd = S.toarray()
    ild_v, ild_s = [], []
    for lst in lists:
        pairs = [(a, b) for x, a in enumerate(lst) for b in lst[x + 1:]]
        if pairs:
            ild_v.append(np.mean([1 - cos(a, b) for a, b in pairs]))
            ild_s.append(np.mean([1 - (Sd[a, b] + Sd[b, a]) / 2 for a, b in pairs]))
    assert M.diversity(rec, k, item_vectors=vectors) == pytest.approx(np.mean(ild_v))
    assert M.diversity(rec, k, similarity=S) == pytest.approx(np.mean(ild_s))


# ----------------------------------------------------------------------------- scikit-learn

def test_ndcg_matches_sklearn_on_full_rankings():
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    n_users, n_items = 40, 25
    scores = rng.random((n_users, n_items))  # continuous: no ties (sklearn averages ties)
    rel = sp.random(n_users, n_items, density=0.2, random_state=rng, format="csr")
    rel.data = rng.integers(1, 5, size=rel.nnz).astype(float)
    keep = np.diff(rel.indptr) > 0
    rec = np.argsort(-scores, axis=1)
    for k in (1, 5, 10, 25):
        expected = ndcg_score(rel.toarray()[keep], scores[keep], k=k)
        assert M.ndcg_at_k(rec, rel, k) == pytest.approx(expected, rel=1e-12)


def test_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=500)
    s = rng.integers(0, 20, size=500).astype(float)  # many ties: both count a tie as 1/2
    assert M.auc(y, s) == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    groups = rng.integers(0, 7, size=500)
    per = [roc_auc_score(y[groups == g], s[groups == g]) for g in range(7)]
    assert M.auc(y, s, groups) == pytest.approx(np.mean(per), rel=1e-12)


def test_rating_errors_match_sklearn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(2)
    y, p = rng.uniform(1, 5, 300), rng.uniform(1, 5, 300)
    assert M.mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert M.rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)))


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(k):
    with pytest.raises(ValueError, match="k must be >= 1"):
        M.ndcg_at_k(HAND_REC, HAND_REL, k)


def test_k_must_be_integer():
    with pytest.raises(TypeError, match="k must be an integer"):
        M.precision_at_k(HAND_REC, HAND_REL, 2.5)


def test_bad_recommended():
    with pytest.raises(ValueError, match="rows but relevant has"):
        M.recall_at_k(HAND_REC[:2], HAND_REL, 3)
    with pytest.raises(TypeError, match="integer item codes"):
        M.recall_at_k(HAND_REC.astype(float), HAND_REL, 3)
    with pytest.raises(ValueError, match="outside the 10 items"):
        M.recall_at_k(HAND_REC + 5, HAND_REL, 3)
    with pytest.raises(ValueError, match="-1 for padding"):
        M.recall_at_k(HAND_REC - 3, HAND_REL, 3)
    with pytest.raises(ValueError, match="2-D"):
        M.recall_at_k(HAND_REC[0], HAND_REL, 3)


def test_empty_relevant_is_an_error():
    with pytest.raises(ValueError, match="no user has a relevant item"):
        M.ndcg_at_k(HAND_REC, sp.csr_matrix((4, 10)), 3)


def test_bad_relevant():
    with pytest.raises(TypeError, match="relevant must be a scipy.sparse matrix"):
        M.ndcg_at_k(HAND_REC, HAND_REL.toarray(), 3)
    with pytest.raises(ValueError, match="negative"):
        M.ndcg_at_k(HAND_REC, -HAND_REL, 3)


def test_bad_scores():
    with pytest.raises(ValueError, match="binary"):
        M.auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="same length"):
        M.auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="both a positive and a negative"):
        M.auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        M.rmse([], [])
    with pytest.raises(ValueError, match="finite"):
        M.mae([1.0], [np.nan])


def test_beyond_accuracy_bad_input():
    with pytest.raises(ValueError, match="exactly one of"):
        M.diversity(HAND_REC)
    with pytest.raises(ValueError, match="item_vectors has 3 rows"):
        M.diversity(HAND_REC, item_vectors=np.ones((3, 2)))
    with pytest.raises(ValueError, match="no items"):
        M.gini(np.full((2, 3), -1), 4)
    with pytest.raises(ValueError, match="n_items must be >= 1"):
        M.coverage(HAND_REC, 0)
