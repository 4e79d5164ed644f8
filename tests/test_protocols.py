"""recforge.evaluate: full and sampled protocols against loop-based references."""
from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import recforge
from recforge.evaluation import evaluate

from evaluation_helpers import EmbeddingModel, ranked, ref_user, rows_of


def make_case(seed=0, n_users=50, n_items=30, d=4, train_density=0.2, test_density=0.1):
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, d)), rng.normal(size=(n_items, d))
    train = sp.random(n_users, n_items, density=train_density, random_state=rng, format="csr")
    train.data[:] = 1
    test = sp.random(n_users, n_items, density=test_density, random_state=rng, format="csr")
    test = test - test.multiply(train != 0)  # held-out items are not in train
    test.eliminate_zeros()
    test.data = rng.integers(1, 6, size=test.nnz).astype(float)  # ratings 1..5
    return EmbeddingModel(U, V).fit(train), train, test


def full_reference(model, train, test, exclude_train=True):
    """Per user with test items: the whole catalogue ranked by score (train items removed)."""
    tr, te = rows_of(train), rows_of(test)
    lists = {}
    for u in range(train.shape[0]):
        if not te[u]:
            continue
        scores = {i: float(model.U[u] @ model.V[i]) for i in range(train.shape[1])
                  if not (exclude_train and i in tr[u])}
        lists[u] = ranked(scores)
    return lists


def test_full_protocol_matches_loop_reference():
    model, train, test = make_case()
    metrics = ["ndcg@5", "recall@10", "precision@3", "map@10", "mrr@10", "hit_rate@5", "f1@5"]
    out = evaluate(model, train, test, metrics, batch_size=7)
    lists = full_reference(model, train, test)
    te = rows_of(test)
    binary = {u: {i: 1.0 for i in te[u]} for u in lists}
    for label in metrics:
        name, k = label.split("@")
        expected = np.mean([ref_user(lists[u], binary[u], int(k))[name] for u in lists])
        assert out.loc[label, "value"] == pytest.approx(expected, abs=1e-12), label
        assert out.loc[label, "n_users"] == len(lists)
    assert set(out["protocol"]) == {"full"}
    assert all(n <= 7 and k == 10 for n, k in model.calls)  # chunked, n = the largest cut-off


def test_full_protocol_without_exclusion_and_graded():
    model, train, test = make_case(seed=1)
    out = evaluate(model, train, test, ["ndcg@8"], exclude_train=False, graded=True)
    lists = full_reference(model, train, test, exclude_train=False)
    te = rows_of(test)
    expected = np.mean([ref_user(lists[u], te[u], 8)["ndcg"] for u in lists])
    assert out.loc["ndcg@8", "value"] == pytest.approx(expected)


def test_relevance_threshold():
    model, train, test = make_case(seed=2)
    out = evaluate(model, train, test, ["recall@10"], relevance_threshold=4)
    lists = full_reference(model, train, test)
    te = rows_of(test)
    good = {u: {i: 1.0 for i, r in te[u].items() if r >= 4} for u in lists}
    expected = [ref_user(lists[u], good[u], 10)["recall"] for u in lists if good[u]]
    assert out.loc["recall@10", "value"] == pytest.approx(np.mean(expected))
    assert out.loc["recall@10", "n_users"] == len(expected)


def test_beyond_accuracy_in_evaluate():
    model, train, test = make_case(seed=3)
    k = 6
    out = evaluate(model, train, test, ["coverage@6", "gini@6", "novelty@6", "arp@6", "diversity@6"],
                   item_vectors=model.V)
    lists = {u: lst[:k] for u, lst in full_reference(model, train, test).items()}
    n_users, n_items = train.shape
    shown = [sum(i in lst for lst in lists.values()) for i in range(n_items)]
    assert out.loc["coverage@6", "value"] == pytest.approx(sum(c > 0 for c in shown) / n_items)
    x = sorted(shown)
    gini = sum((2 * (i + 1) - n_items - 1) * xi for i, xi in enumerate(x)) / (n_items * sum(x))
    assert out.loc["gini@6", "value"] == pytest.approx(gini)
    users_of = np.asarray((train != 0).sum(axis=0)).ravel()
    nov = np.mean([np.mean([-math.log2(max(users_of[i], 1) / n_users) for i in lst]) for lst in lists.values()])
    assert out.loc["novelty@6", "value"] == pytest.approx(nov)
    arp = np.mean([np.mean([users_of[i] for i in lst]) for lst in lists.values()])
    assert out.loc["average_popularity@6", "value"] == pytest.approx(arp)
    unit = model.V / np.linalg.norm(model.V, axis=1, keepdims=True)
    ild = np.mean([np.mean([1 - unit[a] @ unit[b] for x_, a in enumerate(lst) for b in lst[x_ + 1:]])
                   for lst in lists.values()])
    assert out.loc["diversity@6", "value"] == pytest.approx(ild)


def test_auc_full_protocol_matches_sklearn_per_user():
    from sklearn.metrics import roc_auc_score

    model, train, test = make_case(seed=4)
    out = evaluate(model, train, test, ["auc"], batch_size=5)
    tr, te = rows_of(train), rows_of(test)
    per = []
    for u in range(train.shape[0]):
        cand = [i for i in range(train.shape[1]) if i not in tr[u]]
        labels = [int(i in te[u]) for i in cand]
        if te[u] and 0 < sum(labels) < len(labels):
            per.append(roc_auc_score(labels, [model.U[u] @ model.V[i] for i in cand]))
    assert out.loc["auc", "value"] == pytest.approx(np.mean(per))


def test_rating_metrics_match_sklearn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    model, train, test = make_case(seed=5)
    out = evaluate(model, train, test, ["rmse", "mae"])
    coo = test.tocoo()
    pred = [model.U[u] @ model.V[i] for u, i in zip(coo.row, coo.col)]
    assert out.loc["rmse", "value"] == pytest.approx(math.sqrt(mean_squared_error(coo.data, pred)))
    assert out.loc["mae", "value"] == pytest.approx(mean_absolute_error(coo.data, pred))
    per = evaluate(model, train, test, ["rmse"], per_user=True)
    u0 = int(coo.row[0])
    mine = coo.row == u0
    assert per.loc[u0, "rmse"] == pytest.approx(math.sqrt(mean_squared_error(coo.data[mine], np.array(pred)[mine])))


# ----------------------------------------------------------------------------- sampled

def test_sampled_protocol_candidates_and_metrics():
    from sklearn.metrics import roc_auc_score

    model, train, test = make_case(seed=6, n_users=40, n_items=60)
    n_neg = 10
    out = evaluate(model, train, test, ["ndcg@5", "hit_rate@3", "auc"], protocol="sampled",
                   n_negatives=n_neg, seed=3)
    assert set(out["protocol"]) == {"sampled (10 negatives per user)"}
    tr, te = rows_of(train), rows_of(test)
    users = np.concatenate([p[0] for p in model.pairs])
    items = np.concatenate([p[1] for p in model.pairs])
    ndcg, hr, aucs = [], [], []
    for u in range(train.shape[0]):
        cand = items[users == u].tolist()
        if not te[u]:
            assert not cand
            continue
        negatives = [i for i in cand if i not in te[u]]
        assert set(te[u]) <= set(cand)                         # every positive is a candidate
        assert len(set(negatives)) == len(negatives)            # no repeated negative
        assert not set(negatives) & set(tr[u])                  # never a train item
        free = train.shape[1] - len(tr[u]) - len(te[u])
        assert len(negatives) == min(n_neg, free)
        scores = {i: float(model.U[u] @ model.V[i]) for i in cand}
        order = ranked(scores)
        rel = {i: 1.0 for i in te[u]}
        ndcg.append(ref_user(order, rel, 5)["ndcg"])
        hr.append(ref_user(order, rel, 3)["hit_rate"])
        if negatives:
            aucs.append(roc_auc_score([int(i in te[u]) for i in cand], [scores[i] for i in cand]))
    assert out.loc["ndcg@5", "value"] == pytest.approx(np.mean(ndcg))
    assert out.loc["hit_rate@3", "value"] == pytest.approx(np.mean(hr))
    assert out.loc["auc", "value"] == pytest.approx(np.mean(aucs))


def test_sampled_ties_follow_the_project_order_and_count_half_in_auc():
    # every score equal: the candidate list is ranked by item code, and AUC is exactly 1/2 per user
    _, train, test = make_case(seed=15, n_users=20, n_items=40)
    flat = EmbeddingModel(np.ones((20, 1)), np.ones((40, 1))).fit(train)
    out = evaluate(flat, train, test, ["mrr@40", "auc"], protocol="sampled", n_negatives=8, seed=2)
    assert out.loc["auc", "value"] == 0.5
    users = np.concatenate([p[0] for p in flat.pairs])
    items = np.concatenate([p[1] for p in flat.pairs])
    te = rows_of(test)
    mrr = [1 / (sorted(items[users == u]).index(min(te[u])) + 1) for u in range(20) if te[u]]
    assert out.loc["mrr@40", "value"] == pytest.approx(np.mean(mrr))


def test_sampled_is_seeded_and_takes_all_when_few_items_remain():
    model, train, test = make_case(seed=7, n_users=30, n_items=25)
    a = evaluate(model, train, test, ["ndcg@10"], protocol="sampled", n_negatives=5, seed=1)
    b = evaluate(model, train, test, ["ndcg@10"], protocol="sampled", n_negatives=5, seed=1)
    assert a.equals(b)
    # more negatives than free items: every free item is a candidate -> equals full ranking of non-train items
    model.pairs.clear()
    many = evaluate(model, train, test, ["ndcg@10", "recall@5"], protocol="sampled", n_negatives=1000)
    full = evaluate(model, train, test, ["ndcg@10", "recall@5"])
    np.testing.assert_allclose(many["value"].to_numpy(), full["value"].to_numpy())


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(1, 20), st.integers(1, 12), st.integers(0, 2 ** 31 - 1))
def test_property_negative_sampling(m, n_items, n_negatives, seed):
    from recforge.evaluation.protocols import complement_codes, sample_negatives

    rng = np.random.default_rng(seed)
    excluded = sp.csr_matrix(rng.random((m, n_items)) < rng.random())
    excluded.sort_indices()
    ex = rows_of(excluded)
    # complement_codes against a brute-force list of the free codes
    for u in range(m):
        free = [i for i in range(n_items) if i not in ex[u]]
        if free:
            got = complement_codes(excluded, np.full(len(free), u), np.arange(len(free)))
            assert got.tolist() == free
    drawn = rows_of(sample_negatives(excluded, n_negatives, rng))
    for u in range(m):
        free = n_items - len(ex[u])
        assert len(drawn[u]) == min(n_negatives, free)
        assert not set(drawn[u]) & set(ex[u]) and all(0 <= i < n_items for i in drawn[u])


@pytest.mark.parametrize("n_items, n_seen", [(53, 3), (8, 3)], ids=["many-free", "few-free"])
def test_sampled_negatives_are_uniform(n_items, n_seen):
    # 4000 identical users with items 0..n_seen-1 seen; 3 negatives each from the n_items - n_seen
    # free items: each free item should be drawn about 4000 * 3 / free times (both sampling paths:
    # redraw-on-repeat when many items are free, a random permutation when few are)
    from recforge.evaluation.protocols import sample_negatives

    users, n_neg = 4000, 3
    seen = sp.csr_matrix(np.tile(np.r_[np.ones(n_seen), np.zeros(n_items - n_seen)], (users, 1)))
    drawn = sample_negatives(seen, n_neg, np.random.default_rng(0))
    assert (np.diff(drawn.indptr) == n_neg).all()
    counts = np.bincount(drawn.indices, minlength=n_items)
    assert counts[:n_seen].sum() == 0
    free = n_items - n_seen
    expected = users * n_neg / free
    # chi-square with free - 1 degrees of freedom, compared with a generous 99.99th percentile bound
    chi2 = ((counts[n_seen:] - expected) ** 2 / expected).sum()
    dof = free - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, chi2


# ----------------------------------------------------------------------------- vocabulary, reports, inputs

def test_out_of_vocabulary_test_entries_are_counted_and_dropped():
    model, train, test = make_case(seed=8)
    n_users, n_items = train.shape
    big = sp.lil_matrix((n_users + 2, n_items + 3))
    big[:n_users, :n_items] = test
    big[n_users, 0] = 1        # unknown user
    big[n_users + 1, 5] = 1    # unknown user
    big[0, n_items + 1] = 1    # unknown item
    with pytest.warns(UserWarning, match="3 of .* test interactions lie outside the train vocabulary"):
        out = evaluate(model, train, big.tocsr(), ["ndcg@10"])
    report = out.attrs["report"]
    assert report["dropped_out_of_vocabulary"] == 3
    assert report["dropped_users_out_of_vocabulary"] == 2
    assert report["dropped_items_out_of_vocabulary"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = evaluate(model, train, test, ["ndcg@10"])
    assert out.loc["ndcg@10", "value"] == clean.loc["ndcg@10", "value"]


def test_cold_users_and_items_are_reported():
    model, train, test = make_case(seed=9)
    train = train.tolil()
    train[0, :] = 0          # user 0 has no train interaction
    train[:, 3] = 0          # item 3 no train user touched
    train = train.tocsr()
    train.eliminate_zeros()
    test = test.tolil()
    test[0, 1] = 1
    test[1, 3] = 1
    model.fit(train)
    out = evaluate(model, train, test.tocsr(), ["recall@5"])
    assert out.attrs["report"]["cold_test_users"] == 1
    assert out.attrs["report"]["cold_test_items"] == 1


def test_per_user_table():
    model, train, test = make_case(seed=10)
    per = evaluate(model, train, test, ["ndcg@5", "coverage@5"], per_user=True)
    lists = full_reference(model, train, test)
    te = rows_of(test)
    assert per.index.tolist() == sorted(lists)
    for u in list(lists)[:10]:
        assert per.loc[u, "ndcg@5"] == pytest.approx(ref_user(lists[u], {i: 1.0 for i in te[u]}, 5)["ndcg"])
    assert "coverage@5" not in per.columns and "coverage@5" in per.attrs["summary"].index
    assert per["ndcg@5"].mean() == pytest.approx(per.attrs["summary"].loc["ndcg@5", "value"])


def test_interactions_inputs_give_the_same_result():
    data = pytest.importorskip("recforge.data")
    model, train, test = make_case(seed=11)
    a = evaluate(model, train, test, ["ndcg@10", "rmse"])
    b = evaluate(model, data.Interactions.from_csr(train), data.Interactions.from_csr(test), ["ndcg@10", "rmse"])
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy())


def test_separately_coded_interactions_are_recoded_through_ids():
    data = pytest.importorskip("recforge.data")
    # train users a, b, c x items 10, 20, 30; test rows (b, 20), (c, 10), (d, 40): user d and item 40
    # are unknown to train -> 1 row dropped; the others must land on train's codes (b=1, 20=1), (c=2, 10=0)
    train = data.Interactions.from_arrays(["a", "b", "c", "a"], [10, 20, 30, 30])
    test = data.Interactions.from_arrays(["b", "d", "c"], [20, 40, 10])

    class Fixed:  # recommends item codes [1, 0, 2] to everyone (no exclusion)
        def recommend(self, users, n=10, *, exclude_seen=True):
            return np.tile([1, 0, 2], (len(users), 1))[:, :n], None

    with pytest.warns(UserWarning, match="1 of 3 test interactions"):
        out = evaluate(Fixed(), train, test, ["mrr@3"], per_user=True)
    # user b (code 1): item 20 = code 1 at rank 1 -> 1; user c (code 2): item 10 = code 0 at rank 2 -> 1/2
    assert out.index.tolist() == [1, 2]
    assert out["mrr@3"].tolist() == [1.0, 0.5]
    assert out.attrs["report"]["dropped_users_out_of_vocabulary"] == 1
    assert out.attrs["report"]["dropped_items_out_of_vocabulary"] == 1


def test_hand_worked_evaluate():
    # 2 users x 4 items. Scores u0: [4, 3, 2, 1], u1: [1, 2, 3, 4] (U = [[1],[-1]], V = [[4],[3],[2],[1]],
    # u1 scores -4,-3,-2,-1). Train: u0 has item 0, u1 has item 3. Test: u0 {2}, u1 {0, 1}.
    # u0 ranking without item 0: [1, 2, 3] -> item 2 at rank 2: recall@2 = 1, ndcg@2 = (1/log2 3)/1
    # u1 ranking without item 3: [2, 1, 0] -> items 1, 0 at ranks 2, 3: recall@2 = 1/2,
    #    ndcg@2 = (1/log2 3) / (1 + 1/log2 3)
    U, V = np.array([[1.0], [-1.0]]), np.array([[4.0], [3.0], [2.0], [1.0]])
    train = sp.csr_matrix(([1.0, 1.0], ([0, 1], [0, 3])), shape=(2, 4))
    test = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 1], [2, 0, 1])), shape=(2, 4))
    out = recforge.evaluate(EmbeddingModel(U, V).fit(train), train, test, ["recall@2", "ndcg@2"])
    d2 = 1 / math.log2(3)
    assert out.loc["recall@2", "value"] == pytest.approx((1 + 0.5) / 2)
    assert out.loc["ndcg@2", "value"] == pytest.approx((d2 / 1 + d2 / (1 + d2)) / 2)


def test_bad_input():
    model, train, test = make_case(seed=12)
    with pytest.raises(ValueError, match="test is empty"):
        evaluate(model, train, sp.csr_matrix(train.shape), ["ndcg@10"])
    with pytest.raises(ValueError, match=r"unknown metric 'nDCG10'.*valid metrics: precision@k"):
        evaluate(model, train, test, ["nDCG10"])
    with pytest.raises(ValueError, match="needs a cut-off"):
        evaluate(model, train, test, ["ndcg"])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        evaluate(model, train, test, ["recall@0"])
    with pytest.raises(ValueError, match="takes no cut-off"):
        evaluate(model, train, test, ["auc@10"])
    with pytest.raises(ValueError, match="protocol must be one of"):
        evaluate(model, train, test, ["ndcg@10"], protocol="loo")
    with pytest.raises(ValueError, match="n_negatives must be >= 1"):
        evaluate(model, train, test, ["ndcg@10"], protocol="sampled", n_negatives=0)
    with pytest.raises(ValueError, match="item_vectors= or item_similarity="):
        evaluate(model, train, test, ["diversity@10"])
    with pytest.raises(TypeError, match="test must be a 2-D scipy.sparse"):
        evaluate(model, train, test.toarray(), ["ndcg@10"])
    with pytest.raises(ValueError, match="outside the train vocabulary: nothing to evaluate"), \
            pytest.warns(UserWarning, match="outside the train vocabulary"):
        evaluate(model, train[:2], sp.vstack([sp.csr_matrix((2, 30)), test[2:]]).tocsr(), ["ndcg@10"])


class BrokenModel:
    def __init__(self, items):
        self.items = items

    def recommend(self, users, n=10, *, exclude_seen=True):
        return self.items(users, n), None


def test_model_breaking_the_contract_is_reported():
    _, train, test = make_case(seed=13)
    with pytest.raises(ValueError, match="model.recommend returned items of shape"):
        evaluate(BrokenModel(lambda u, n: np.zeros((len(u) + 1, n), int)), train, test, ["ndcg@5"])
    with pytest.raises(ValueError, match="outside the 30 items"):
        evaluate(BrokenModel(lambda u, n: np.full((len(u), n), 30)), train, test, ["ndcg@5"])


def test_missing_methods_are_named():
    _, train, test = make_case(seed=13)
    model = BrokenModel(lambda u, n: np.zeros((len(u), n), int))
    with pytest.raises(TypeError, match="model.predict"):
        evaluate(model, train, test, ["rmse"])
    with pytest.raises(TypeError, match="model.predict"):
        evaluate(model, train, test, ["ndcg@5"], protocol="sampled")


def test_duplicates_and_padding_from_a_model():
    # a model that returns [item, item, -1, ...]: the repeat and the padding are misses
    _, train, test = make_case(seed=14)
    te = rows_of(test)

    def lists(users, n):
        out = np.full((len(users), n), -1)
        for r, u in enumerate(users):
            first = min(te[u]) if te[u] else 0
            out[r, :2] = first
        return out

    res = evaluate(BrokenModel(lists), train, test, ["precision@4", "recall@4"])
    users = [u for u in range(train.shape[0]) if te[u]]
    assert res.loc["precision@4", "value"] == pytest.approx(0.25)  # exactly one hit of 4 places each
    assert res.loc["recall@4", "value"] == pytest.approx(np.mean([1 / len(te[u]) for u in users]))


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    model, train, test = make_case(seed=16)
    evaluate(model, train, test, ["ndcg@5"], progress=True, batch_size=8)
    assert "evaluate (full)" in capsys.readouterr().err


def test_import_recforge_stays_light():
    code = ("import sys, recforge; assert 'pandas' not in sys.modules, 'pandas'; "
            "assert 'recforge.evaluation' not in sys.modules; f = recforge.evaluate; "
            "assert f.__module__ == 'recforge.evaluation.protocols'; import recforge.evaluation; "
            "heavy = {'pandas', 'optuna', 'tqdm', 'sklearn', 'torch'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_matches_implicit_ranking_metrics_on_ml100k():
    """Peer check on real data: implicit's ranking_metrics_at_k and recforge.evaluate on the same
    fitted implicit ALS model and the same ML-100K random split (NDCG and MAP share conventions;
    implicit's precision is micro-averaged, sum(hits) / sum(min(K, |R|)), checked through per-user hits)."""
    implicit = pytest.importorskip("implicit")
    from implicit.evaluation import ranking_metrics_at_k

    from conftest import data_file

    raw = np.loadtxt(data_file("ml-100k", "u.data"), dtype=np.int64)
    users, items = raw[:, 0] - 1, raw[:, 1] - 1
    held_out = np.random.default_rng(0).random(users.size) < 0.2
    shape = (users.max() + 1, items.max() + 1)

    def matrix(mask):
        return sp.csr_matrix((np.ones(mask.sum(), np.float32), (users[mask], items[mask])), shape=shape)

    train, test = matrix(~held_out), matrix(held_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # implicit's OpenBLAS thread advice
        als = implicit.cpu.als.AlternatingLeastSquares(factors=16, iterations=5, random_state=0, num_threads=1)
        als.fit(train, show_progress=False)

    class Adapter:
        def recommend(self, users, n=10, *, exclude_seen=True):
            return als.recommend(users, train[users], N=n, filter_already_liked_items=exclude_seen)

    K = 10
    expected = ranking_metrics_at_k(als, train, test, K=K, show_progress=False)
    per = evaluate(Adapter(), train, test, [f"ndcg@{K}", f"map@{K}", f"precision@{K}"], per_user=True)
    assert per[f"ndcg@{K}"].mean() == pytest.approx(expected["ndcg"], rel=1e-9)
    assert per[f"map@{K}"].mean() == pytest.approx(expected["map"], rel=1e-9)
    n_relevant = np.diff(test.indptr)[per.index.to_numpy()]
    micro = (per[f"precision@{K}"].to_numpy() * K).sum() / np.minimum(K, n_relevant).sum()
    assert micro == pytest.approx(expected["precision"], rel=1e-9)
