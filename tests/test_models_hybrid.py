"""Hybrids: fusion against hand-worked numbers (ties included), blends against brute force over
their components' own scores, learned weights on synthetic data, switching, and the contract."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

import recforge  # noqa: E402
from recforge.models import ItemKNN, MostPopular, Random  # noqa: E402
from recforge.models.content import ContentKNN  # noqa: E402
from recforge.models.hybrid import LearnedHybrid, SwitchingHybrid, VotingHybrid, WeightedHybrid  # noqa: E402
from recforge.models.hybrid.fusion import candidate_ranks, normalize_scores, rank_fusion, weighted_fusion  # noqa: E402
from recforge.models.hybrid.learners import learn_weights  # noqa: E402

from test_models_content import with_metadata  # noqa: E402
from test_models_contract import RecommenderContract, random_user_items  # noqa: E402

S1 = np.array([[3.0, 2.0, 2.0, 1.0]])
S2 = np.array([[1.0, 3.0, 2.0, 2.0]])
ALL = np.ones((1, 4), dtype=bool)


# ---------------------------------------------------------------------- fusion, by hand
def test_ranks_share_ties():
    np.testing.assert_array_equal(candidate_ranks(S1, ALL), [[1, 2.5, 2.5, 4]])
    seen_last = np.array([[True, True, True, False]])
    np.testing.assert_array_equal(candidate_ranks(S1, seen_last), [[1, 2.5, 2.5, 4]])
    seen_first = np.array([[False, True, True, True]])      # item 0 (score 3) is not a candidate
    np.testing.assert_array_equal(candidate_ranks(S1, seen_first), [[1, 1.5, 1.5, 3]])


def test_normalisations_by_hand():
    np.testing.assert_allclose(normalize_scores(S1, ALL, "minmax"), [[1, 0.5, 0.5, 0]])
    np.testing.assert_allclose(normalize_scores(S1, ALL, "zscore"), [[2 ** 0.5, 0, 0, -(2 ** 0.5)]])
    np.testing.assert_allclose(normalize_scores(S1, ALL, "rank"), [[1, 0.625, 0.625, 0.25]])
    flat = np.array([[2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(normalize_scores(flat, np.ones((1, 3), bool), "minmax"), [[0, 0, 0]])
    np.testing.assert_array_equal(normalize_scores(flat, np.ones((1, 3), bool), "zscore"), [[0, 0, 0]])


def test_rrf_and_borda_by_hand_with_ties():
    rrf = rank_fusion([S1, S2], ALL, [1, 1], "rrf", k=60)
    np.testing.assert_allclose(rrf, [[1 / 61 + 1 / 64, 1 / 62.5 + 1 / 61, 2 / 62.5, 1 / 64 + 1 / 62.5]])
    borda = rank_fusion([S1, S2], ALL, [1, 1], "borda")
    np.testing.assert_allclose(borda, [[5, 6.5, 5, 3.5]])             # points: [4, 2.5, 2.5, 1] + [1, 4, 2.5, 2.5]
    weighted = rank_fusion([S1, S2], ALL, [2, 1], "borda")
    np.testing.assert_allclose(weighted, [[9, 9, 7.5, 4.5]])
    # item 3 seen: N = 3 candidates; it keeps the rank it would have among them
    cand = np.array([[True, True, True, False]])
    np.testing.assert_allclose(rank_fusion([S1], cand, [1], "borda"), [[3, 1.5, 1.5, 0]])
    np.testing.assert_allclose(weighted_fusion([S1, S2], ALL, [1, 1], "minmax"), [[1, 1.5, 1, 0.5]])


def test_voting_recommend_follows_the_fused_order_and_ties_by_code():
    # two popularity rankers over 4 items whose per-item popularities are S1 / S2
    R1 = _matrix_with_item_counts([3, 2, 2, 1])
    pop = MostPopular().fit(R1)
    weighted = MostPopular(weighted=True).fit(R1)
    model = VotingHybrid([pop, weighted], method="borda").fit(R1)
    # user 3 saw nothing: fused Borda with both components identical = 2 * [4, 2.5, 2.5, 1]
    items, scores = model.recommend([3], n=4)
    np.testing.assert_array_equal(items[0], [0, 1, 2, 3])
    np.testing.assert_allclose(scores[0], [8, 5, 5, 2])


def _matrix_with_item_counts(counts):
    rows, cols = [], []
    for item, c in enumerate(counts):
        rows += list(range(c))
        cols += [item] * c
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(4, len(counts)))


# ---------------------------------------------------------------------- blends vs brute force
def test_weighted_hybrid_equals_brute_force_over_component_scores():
    R = random_user_items(30, 25, seed=4)
    data = with_metadata(R)
    a, b = ItemKNN(k=10, progress=False).fit(data), ContentKNN(fields=("title", "genres")).fit(data)
    for normalize in ("minmax", "zscore", "rank"):
        model = WeightedHybrid([a, b], weights=[0.7, 0.3], normalize=normalize).fit(data)
        items, scores = model.recommend(np.arange(30), n=5)
        for u in range(30):
            cand = np.ones(25, bool)
            cand[R[u].indices] = False
            fused = np.zeros(25)
            for w, m in ((0.7, a), (0.3, b)):
                s = m.predict(np.full(25, u), np.arange(25))
                c = s[cand]
                if normalize == "minmax":
                    fused += w * (s - c.min()) / (c.max() - c.min())
                elif normalize == "zscore":
                    fused += w * (s - c.mean()) / c.std()
                else:
                    rank = np.array([1 + (c > x).sum() + 0.5 * ((c == x).sum() - cand[i]) for i, x in enumerate(s)])
                    fused += w * (cand.sum() - rank + 1) / cand.sum()
            order = sorted(np.flatnonzero(cand), key=lambda i: (-fused[i], i))[:5]
            np.testing.assert_allclose(scores[u], fused[order], rtol=1e-5, atol=1e-6)


def test_switching_uses_fallback_below_the_threshold():
    R = random_user_items(30, 25, seed=6)
    data = with_metadata(R)
    primary, fallback = ItemKNN(k=10, progress=False).fit(data), ContentKNN(fields=("title",)).fit(data)
    model = SwitchingHybrid(primary, fallback, min_interactions=5).fit(data)
    counts = np.diff(R.indptr)
    items, _ = model.recommend(np.arange(30), n=5)
    p_items, _ = primary.recommend(np.arange(30), n=5)
    f_items, _ = fallback.recommend(np.arange(30), n=5)
    short = counts < 5
    assert short.any() and (~short).any()
    np.testing.assert_array_equal(items[short], f_items[short])
    np.testing.assert_array_equal(items[~short], p_items[~short])
    # a new user with a one-item history gets the content model's list
    h = sp.csr_matrix(([1.0], ([0], [3])), shape=(1, 25), dtype=np.float32)
    np.testing.assert_array_equal(model.recommend([-1], n=5, history=h)[0], fallback.recommend([-1], n=5, history=h)[0])


def test_switching_item_threshold_scores_cold_items_by_content():
    R = random_user_items(30, 25, seed=7).tolil()
    R[:, 24] = 0                                     # item 24 has no interactions
    R = R.tocsr()
    R.eliminate_zeros()
    data = with_metadata(R)
    model = SwitchingHybrid(ItemKNN(k=10, progress=False), ContentKNN(fields=("title",)), min_interactions=0,
                            min_item_interactions=1).fit(data)
    s = model.predict(np.arange(30), np.full(30, 24))
    assert np.all(s >= 0) and s.max() > 0, "ItemKNN alone gives the cold item 0; content gives more"


# ---------------------------------------------------------------------- learned weights
def test_learners_recover_known_weights():
    rng = np.random.default_rng(0)
    X = rng.random((4000, 3))
    true = np.array([2.0, -1.0, 0.5])
    y = X @ true + 0.3 + rng.normal(0, 0.01, 4000)
    w, b = learn_weights(X, y, np.zeros(4000), "ridge", alpha=1e-6)
    np.testing.assert_allclose(w, true, atol=0.01)
    assert b == pytest.approx(0.3, abs=0.01)
    logits = (X - 0.5) @ (2 * true)
    y = (rng.random(4000) < 1 / (1 + np.exp(-logits))).astype(float)
    w, _ = learn_weights(X, y, np.zeros(4000), "logistic", alpha=1e-6)
    np.testing.assert_allclose(w, 2 * true, atol=0.6)
    # lambdarank: per group of 20, the chosen item is the argmax of X w + Gumbel noise; the
    # learned direction matches w's (rankings are scale-free)
    groups = np.repeat(np.arange(300), 20)
    X = rng.random((6000, 3))
    util = X @ (4 * true) + rng.gumbel(size=6000)
    y = np.zeros(6000)
    for g in range(300):
        y[g * 20 + np.argmax(util[g * 20:(g + 1) * 20])] = 1
    w, _ = learn_weights(X, y, groups, "lambdarank", alpha=0.0, epochs=300, lr=2.0)
    cosine = w @ true / (np.linalg.norm(w) * np.linalg.norm(true))
    assert cosine > 0.95, (w, cosine)


@pytest.mark.parametrize("learner", ["ridge", "logistic", "lambdarank"])
def test_learned_hybrid_weights_the_informative_component(learner):
    # users prefer items in their own block: ItemKNN sees that, Random does not
    rng = np.random.default_rng(1)
    rows, cols = [], []
    for u in range(60):
        block = u % 3
        for i in rng.choice(np.arange(block * 10, block * 10 + 10), 6, replace=False):
            rows.append(u)
            cols.append(i)
    R = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(60, 30))
    model = LearnedHybrid([ItemKNN(k=10, progress=False), Random(seed=0)], learner=learner).fit(R)
    assert model.weights_.shape == (2,)
    assert model.weights_[0] > 0 and model.weights_[0] > abs(model.weights_[1]) * 3, model.weights_


# ---------------------------------------------------------------------- contract
class HybridContract:
    """What the hybrids' contract suites share (a mixin placed before RecommenderContract): data
    with item metadata, and save/load compared component by component (loaded components are
    new objects)."""

    def fit_input(self, data):
        return with_metadata(data)

    def test_save_load_gives_identical_results(self, fitted, R, tmp_path):
        fitted.save(tmp_path / "m")
        loaded = recforge.load(tmp_path / "m")
        assert type(loaded) is type(fitted)
        for name, value in fitted.get_params().items():
            if name in fitted._component_params:
                parts = value if isinstance(value, (list, tuple)) else [value]
                got = loaded.get_params()[name]
                got = got if isinstance(got, (list, tuple)) else [got]
                assert [type(p) for p in parts] == [type(g) for g in got]
                assert [p.get_params() for p in parts] == [g.get_params() for g in got]
            else:
                assert loaded.get_params()[name] == value
        users = np.arange(R.shape[0])
        for a, b in zip(fitted.recommend(users, n=5), loaded.recommend(users, n=5)):
            np.testing.assert_array_equal(a, b)
        u, i = np.nonzero(np.ones(R.shape, dtype=bool))
        np.testing.assert_allclose(fitted.predict(u[:200], i[:200]), loaded.predict(u[:200], i[:200]), rtol=1e-12)


def _parts():
    return [ItemKNN(k=10, progress=False), ContentKNN(fields=("title", "genres"))]


class TestWeightedHybridContract(HybridContract, RecommenderContract):
    def make_model(self):
        return WeightedHybrid(_parts(), weights=(1.0, 0.5), normalize="zscore")


class TestVotingHybridContract(HybridContract, RecommenderContract):
    def make_model(self):
        return VotingHybrid(_parts(), method="rrf")


class TestLearnedHybridContract(HybridContract, RecommenderContract):
    def make_model(self):
        return LearnedHybrid(_parts(), learner="ridge")


class TestSwitchingHybridContract(HybridContract, RecommenderContract):
    def make_model(self):
        return SwitchingHybrid(ItemKNN(k=10, progress=False), ContentKNN(fields=("title", "genres")), min_interactions=6)
