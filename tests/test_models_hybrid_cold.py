"""Hybrids and items a component cannot score (cold items): the weight-sharing rule against
hand-worked numbers and a brute force over the components' own scores, LearnedHybrid's
unknown-item terms, and ``explain`` (the components' terms sum to the hybrid's score)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

import recforge  # noqa: E402
from recforge.models import ItemKNN, MostPopular, UserKNN  # noqa: E402
from recforge.models.content import ContentKNN  # noqa: E402
from recforge.models.hybrid import LearnedHybrid, SwitchingHybrid, VotingHybrid, WeightedHybrid  # noqa: E402
from recforge.models.hybrid.blend import known_items  # noqa: E402
from recforge.models.hybrid.fusion import rank_fusion, weight_shares, weighted_fusion  # noqa: E402

from test_models_content import catalogue, with_metadata  # noqa: E402
from test_models_contract import random_user_items  # noqa: E402

# item 0 is unknown to the collaborative component (it scores it 0, as a CF model does)
CF = np.array([[0.0, 4.0, 2.0, 1.0]])
CONTENT = np.array([[0.9, 0.1, 0.5, 0.3]])
ALL = np.ones((1, 4), dtype=bool)
KNOWN = [np.array([False, True, True, True]), np.ones(4, dtype=bool)]


# ---------------------------------------------------------------------- the rule, by hand
def test_weight_shares_by_hand():
    known = [np.array([False, True, False]), np.array([True, True, False])]
    np.testing.assert_allclose(weight_shares(known, [2.0, -1.0]), [3.0, 1.0, 0.0])   # |w| = 2 + 1


def test_weighted_fusion_with_an_unknown_item_by_hand():
    # CF min-max over the items it knows (1..3): (s - 1) / 3 -> [-, 1, 1/3, 0], mean 4/9;
    # content over all four: (s - 0.1) / 0.8 -> [1, 0, 0.5, 0.25]
    # "mean": item 0 takes CF's mean term; "share": content's term twice
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [1, 1], "minmax", KNOWN, "mean"),
                               [[4 / 9 + 1.0, 1.0, 1 / 3 + 0.5, 0.25]])
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [1, 1], "minmax", KNOWN, "share"),
                               [[2.0, 1.0, 1 / 3 + 0.5, 0.25]])
    # every item known: the plain weighted sum, CF's 0 for item 0 counted as a score
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [1, 1], "minmax"), [[1.0, 1.0, 1.0, 0.5]])
    # weights 3 and 1: item 0's share is (3 + 1) / 1
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [3, 1], "minmax", KNOWN, "share"),
                               [[4.0, 3.0, 1.0 + 0.5, 0.25]])
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [3, 1], "minmax", KNOWN, "mean"),
                               [[4 / 3 + 1.0, 3.0, 1.0 + 0.5, 0.25]])
    # item 1 seen: CF's min-max over items 2..3 only, (s - 1) / 1 -> [-, 3, 1, 0], mean 1/2;
    # content's over items 0, 2, 3, (s - 0.3) / 0.6 -> [1, -1/3, 1/3, 0]
    cand = np.array([[True, False, True, True]])
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], cand, [1, 1], "minmax", KNOWN, "share"),
                               [[2.0, 3.0 - 1 / 3, 1.0 + 1 / 3, 0.0]])
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], cand, [1, 1], "minmax", KNOWN, "mean"),
                               [[0.5 + 1.0, 3.0 - 1 / 3, 1.0 + 1 / 3, 0.0]])
    # zscore: CF's mean term is 0 by construction
    z_cf = (np.array([4.0, 2.0, 1.0]) - 7 / 3) / np.std([4.0, 2.0, 1.0])
    z_ct = (CONTENT[0] - CONTENT[0].mean()) / CONTENT[0].std()
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [1, 1], "zscore", KNOWN, "mean"),
                               [np.r_[0.0, z_cf] + z_ct])
    with pytest.raises(ValueError, match="unknown"):
        weighted_fusion([CF, CONTENT], ALL, [1, 1], "minmax", KNOWN, "min")


def test_rank_fusion_with_an_unknown_item_by_hand():
    # CF ranks among items 1..3: 1, 2, 3 (N = 3); content ranks among all: item 0 1st, 2 2nd, 3 3rd, 1 4th
    rrf = rank_fusion([CF, CONTENT], ALL, [1, 1], "rrf", k=60, known=KNOWN, unknown="share")
    np.testing.assert_allclose(rrf, [[2 / 61, 1 / 61 + 1 / 64, 2 / 62, 2 / 63]])
    rrf = rank_fusion([CF, CONTENT], ALL, [1, 1], "rrf", k=60, known=KNOWN, unknown="mean")
    mean_vote = (1 / 61 + 1 / 62 + 1 / 63) / 3
    np.testing.assert_allclose(rrf, [[mean_vote + 1 / 61, 1 / 61 + 1 / 64, 2 / 62, 2 / 63]])
    borda = rank_fusion([CF, CONTENT], ALL, [1, 1], "borda", known=KNOWN, unknown="share")
    np.testing.assert_allclose(borda, [[2 * 4, 3 + 1, 2 + 3, 1 + 2]])
    borda = rank_fusion([CF, CONTENT], ALL, [1, 1], "borda", known=KNOWN, unknown="mean")
    np.testing.assert_allclose(borda, [[(3 + 1) / 2 + 4, 3 + 1, 2 + 3, 1 + 2]])


def test_an_item_no_component_knows():
    nobody = [np.array([True, True, True, False])] * 2
    np.testing.assert_allclose(weighted_fusion([CF, CONTENT], ALL, [1, 1], "zscore", nobody, "share")[0, 3], 0.0)
    np.testing.assert_allclose(rank_fusion([CF, CONTENT], ALL, [1, 1], "borda", known=nobody,
                                           unknown="share")[0, 3], 0.0)
    # "mean": the average of each component's points over items 0..2 (N = 3): 2 + 2
    np.testing.assert_allclose(rank_fusion([CF, CONTENT], ALL, [1, 1], "borda", known=nobody,
                                           unknown="mean")[0, 3], 4.0)


# ---------------------------------------------------------------------- the models
def cold_data():
    """The 12-movie catalogue (items 4, 5, 10, 11 have no interaction) and two fitted components."""
    inter, _ = catalogue()
    return inter, ItemKNN(k=5, progress=False).fit(inter), ContentKNN(fields=("title", "genres", "tags")).fit(inter)


def test_known_items_of_collaborative_and_content_models():
    inter, cf, content = cold_data()
    np.testing.assert_array_equal(np.flatnonzero(~known_items(cf)), [4, 5, 10, 11])
    assert known_items(content).all()
    assert known_items(MostPopular().fit(inter)).sum() == 8


def _minmax(s, cand):
    c = s[cand]
    return (s - c.min()) / (c.max() - c.min())


@pytest.mark.parametrize("unknown", ["mean", "share"])
def test_weighted_hybrid_cold_items_by_brute_force(unknown):
    inter, cf, content = cold_data()
    model = WeightedHybrid([cf, content], weights=[2.0, 1.0], normalize="minmax", unknown=unknown).fit(inter)
    cold = np.array([4, 5, 10, 11])
    for u in range(6):
        seen = inter.to_csr()[u].indices
        cand = np.ones(12, bool)
        cand[seen] = False
        warm_cand = cand.copy()
        warm_cand[cold] = False
        s_cf = cf.predict(np.full(12, u), np.arange(12))
        s_ct = content.predict(np.full(12, u), np.arange(12))
        n_cf = _minmax(s_cf, warm_cand)
        expected = 2.0 * n_cf + _minmax(s_ct, cand)
        if unknown == "share":
            expected[cold] = 3.0 * _minmax(s_ct, cand)[cold]      # (2 + 1) / 1 x content's term
        else:
            expected[cold] = 2.0 * n_cf[warm_cand].mean() + _minmax(s_ct, cand)[cold]
        got = model.predict(np.full(12, u), np.arange(12))
        np.testing.assert_allclose(got[cand], expected[cand], rtol=1e-6, atol=1e-9)


def test_voting_hybrid_gives_cold_items_the_content_vote_scaled():
    inter, cf, content = cold_data()
    model = VotingHybrid([cf, content], method="borda", unknown="share").fit(inter)
    u = 0
    seen = set(inter.to_csr()[u].indices.tolist())
    cand = np.array([i not in seen for i in range(12)])
    s_ct = content.predict(np.full(12, u), np.arange(12))
    c = s_ct[cand]
    points = np.array([cand.sum() - ((c > x).sum() + 0.5 * ((c == x).sum() - 1)) for x in s_ct])
    got = model.predict(np.full(12, u), np.arange(12))
    for i in (4, 5, 10, 11):
        assert got[i] == pytest.approx(2 * points[i])


def test_learned_hybrid_unknown_item_terms():
    R = random_user_items(40, 12, density=0.35, seed=3).tolil()
    R[:, [4, 10]] = 0
    R = R.tocsr()
    R.eliminate_zeros()
    data = with_metadata(R)
    model = LearnedHybrid([ItemKNN(k=5, progress=False), ContentKNN(fields=("title", "genres"))],
                          learner="ridge").fit(data)
    assert model.weights_.shape == model.unknown_weights_.shape == (2,)
    # score = sum_m [i known to m] w_m minmax_m + [i unknown to m] b_m, by brute force from predict
    cf_m, ct_m = model.models_
    cold = np.array([4, 10])
    for u in range(0, 40, 7):
        cand = np.ones(12, bool)
        cand[R[u].indices] = False
        warm_cand = cand.copy()
        warm_cand[cold] = False
        s_cf = cf_m.predict(np.full(12, u), np.arange(12))
        s_ct = ct_m.predict(np.full(12, u), np.arange(12))
        expected = model.weights_[0] * _minmax(s_cf, warm_cand) + model.weights_[1] * _minmax(s_ct, cand)
        expected[cold] = model.unknown_weights_[0] + model.weights_[1] * _minmax(s_ct, cand)[cold]
        got = model.predict(np.full(12, u), np.arange(12))
        np.testing.assert_allclose(got[cand], expected[cand], rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------- explain
def _hybrids(cf, content):
    return [WeightedHybrid([cf, content], weights=[1.0, 0.5], normalize="zscore"),
            WeightedHybrid([cf, content], weights=[1.0, 0.5], normalize="minmax", unknown="share"),
            VotingHybrid([cf, content], method="rrf"),
            VotingHybrid([cf, content], method="borda", unknown="share"),
            LearnedHybrid([ItemKNN(k=5, progress=False), ContentKNN(fields=("title", "genres", "tags"))],
                          learner="ridge"),
            SwitchingHybrid(cf, content, min_interactions=3, min_item_interactions=1)]


@pytest.mark.parametrize("which", range(6))
def test_explain_contributions_sum_to_the_score(which):
    inter, cf, content = cold_data()
    model = _hybrids(cf, content)[which].fit(inter)
    users = np.array([0, 3, 5])                      # a sci-fi fan and two romance fans
    top, top_scores = model.recommend(users, n=12)
    for row, u in enumerate(users):
        ranks = [0, 1, 2] + [int(np.flatnonzero(top[row] == cold)[0]) for cold in (4, 10)]
        for rank in ranks:
            i = int(top[row, rank])
            why = model.explain(int(u), i)
            parts = [c.contribution for c in why.components]
            assert why.score == pytest.approx(sum(parts), abs=1e-12)
            assert why.score == pytest.approx(float(top_scores[row, rank]), rel=1e-5, abs=1e-6)
            assert why.score == pytest.approx(float(model.predict([u], [i])[0]), rel=1e-9, abs=1e-12)
            assert [c.model for c in why.components] == ["ItemKNN", "ContentKNN"]
            assert why.components[0].knows_item == (i not in (4, 5, 10, 11))


def test_explain_names_each_component_and_its_own_explanation():
    inter, cf, content = cold_data()
    model = WeightedHybrid([cf, content], normalize="minmax", unknown="share").fit(inter)
    why = model.explain(0, 3)
    knn, ct = why.components
    assert knn.explanation is not None and ct.explanation is not None
    # each component's own explanation explains its own score
    assert knn.explanation.score == pytest.approx(float(cf.predict([0], [3])[0]), rel=1e-6)
    assert ct.explanation.score == pytest.approx(float(content.predict([0], [3])[0]), rel=1e-6)
    assert knn.component_score == pytest.approx(knn.explanation.score, rel=1e-6)
    assert why.top_components()[0][1] == max((c.contribution for c in why.components), key=abs)
    # a cold item: ItemKNN knows it not and adds nothing; content's term is the whole score
    cold = model.explain(0, 4)
    assert not cold.components[0].knows_item and cold.components[0].contribution == 0.0
    assert cold.score == pytest.approx(cold.components[1].contribution)


def test_explain_with_history_for_a_new_user_and_with_ids():
    inter, cf, content = cold_data()
    model = VotingHybrid([cf, content], method="borda").fit(inter)
    h = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 2])), shape=(1, 12), dtype=np.float32)
    items, scores = model.recommend([-1], n=3, history=h)
    why = model.explain(-1, int(items[0, 0]), history=h)
    assert why.score == pytest.approx(float(scores[0, 0]), rel=1e-5)
    assert why.score == pytest.approx(sum(c.contribution for c in why.components), abs=1e-12)
    by_id = model.explain(inter.user_ids[0], 103, ids=True)
    assert by_id.score == pytest.approx(model.explain(0, 3).score)
    with pytest.raises(ValueError, match="item"):
        model.explain(0, 12)
