"""ItemKNN / UserKNN with explicit feedback: Surprise's KNNBasic / KNNWithMeans / KNNBaseline as
the peer (pair by pair on tie-free data, and RMSE/MAE on MovieLens 100K), the baseline ALS
against a loop transcription, and the contract."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import IdMap, Interactions
from recforge.models import ItemKNN, UserKNN
from recforge.models.neighbourhood.baselines_als import baseline_als

from conftest import data_file
from test_models_contract import RecommenderContract, random_user_items

SURPRISE_CLASSES = {"none": "KNNBasic", "mean": "KNNWithMeans", "baseline": "KNNBaseline"}


class TestUserKNNExplicitMean(RecommenderContract):

    def train_matrix(self):
        return random_user_items(ratings=True)

    def make_model(self):
        return UserKNN(k=5, similarity="msd", feedback="explicit", centering="mean")


class TestItemKNNExplicitBaseline(RecommenderContract):

    def train_matrix(self):
        return random_user_items(ratings=True, seed=2)

    def make_model(self):
        return ItemKNN(k=5, similarity="pearson", feedback="explicit", centering="baseline", min_k=2)


@pytest.mark.parametrize("centering", ["none", "mean"])
def test_user_history_equals_refit_with_the_user_appended(centering):
    """User-based: a new user's neighbours are the stored users most similar to its history;
    their ratings and means are unchanged by adding it, so a refit with the user appended
    predicts the same (the global mean would differ, but no prediction here falls back to it:
    every item has raters and the dense history co-rates with every user)."""
    R = random_user_items(n_users=40, n_items=20, density=0.4, ratings=True, seed=8)
    assert (np.diff(R.tocsc().indptr) > 0).all()
    h = random_user_items(n_users=1, n_items=20, density=0.6, ratings=True, seed=9)
    params = dict(k=5, similarity="msd", feedback="explicit", centering=centering)
    got = UserKNN(**params).fit(R).recommend([-1], n=20, history=h)
    want = UserKNN(**params).fit(sp.vstack([R, h]).tocsr()).recommend([40], n=20)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    np.testing.assert_array_equal(got[0], want[0])


# ----------------------------------------------------------------------------- baselines

def test_baseline_als_matches_a_loop_transcription_of_surprise():
    R = random_user_items(n_users=15, n_items=12, ratings=True, seed=3)
    R = sp.vstack([R, sp.csr_matrix((1, 12))]).tocsr()   # a user without ratings
    mu, bu, bi = baseline_als(R, reg_i=10, reg_u=15, n_epochs=10)
    coo = R.tocoo()
    ratings = list(zip(coo.row, coo.col, coo.data.astype(float)))
    gm = sum(r for _, _, r in ratings) / len(ratings)
    ref_u, ref_i = [0.0] * R.shape[0], [0.0] * R.shape[1]
    for _ in range(10):
        for i in range(R.shape[1]):
            mine = [(u, r) for u, j, r in ratings if j == i]
            ref_i[i] = sum(r - gm - ref_u[u] for u, r in mine) / (10 + len(mine))
        for u in range(R.shape[0]):
            mine = [(i, r) for v, i, r in ratings if v == u]
            ref_u[u] = sum(r - gm - ref_i[i] for i, r in mine) / (15 + len(mine))
    assert mu == pytest.approx(gm)
    np.testing.assert_allclose(bu, ref_u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bi, ref_i, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- Surprise, pair by pair

def _continuous_ratings(seed=5, n_users=30, n_items=24, density=0.35):
    """Ratings in [1, 5] drawn from a continuum (no ties between similarities), plus one user and
    one item without ratings (unknown to Surprise)."""
    rng = np.random.default_rng(seed)
    R = sp.random(n_users, n_items, density=density, random_state=rng, format="csr")
    R.data = (1.0 + 4.0 * rng.random(R.nnz)).astype(np.float32).astype(np.float64)  # what recforge stores
    R = sp.vstack([R, sp.csr_matrix((1, n_items))]).tocsr()
    return sp.hstack([R, sp.csr_matrix((n_users + 1, 1))]).tocsr()


@pytest.mark.parametrize("user_based", [True, False])
@pytest.mark.parametrize("centering", ["none", "mean", "baseline"])
@pytest.mark.parametrize("metric", ["msd", "pearson"])
@pytest.mark.parametrize("k, min_k", [(40, 1), (3, 2), (5, 4)])
def test_predictions_equal_surprise_pair_by_pair(user_based, centering, metric, k, min_k):
    surprise = pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    R = _continuous_ratings()
    coo = R.tocoo()
    frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data})
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = getattr(surprise, SURPRISE_CLASSES[centering])(
        k=k, min_k=min_k, sim_options={"name": metric, "user_based": user_based}, verbose=False).fit(trainset)
    model_cls = UserKNN if user_based else ItemKNN
    model = model_cls(k=k, min_k=min_k, similarity=metric, feedback="explicit", centering=centering,
                      rating_range=(1, 5)).fit(R)
    users, items = np.divmod(np.arange(R.shape[0] * R.shape[1]), R.shape[1])   # training pairs included
    want = np.array([algo.predict(u, i).est for u, i in zip(users, items)])
    # recforge computes similarities in float32 (Surprise in float64)
    np.testing.assert_allclose(model.predict(users, items), want, rtol=1e-6, atol=1e-6)


def test_fewer_than_min_k_neighbours_falls_back_as_surprise_does():
    """Hand-worked: items 0, 1; user 0 rated item 0 only (4), users 1 and 2 rated both.
    msd(0, 1) = 1 / ((4 - 2)^2 + 1) = 0.2, msd(0, 2) = 1 / ((4 - 5)^2 + 1) = 0.5.
    Predicting (0, 1) with k=1: the best neighbour among item 1's raters is user 2 (0.5), r = 3."""
    R = sp.csr_matrix(np.array([[4, 0], [2, 1], [5, 3]], dtype=float))
    basic = UserKNN(k=1, similarity="msd", feedback="explicit").fit(R)
    assert basic.predict([0], [1])[0] == pytest.approx(3.0)
    # k=2: (0.2 * 1 + 0.5 * 3) / 0.7
    assert UserKNN(k=2, similarity="msd", feedback="explicit").fit(R).predict([0], [1])[0] == \
        pytest.approx((0.2 * 1 + 0.5 * 3) / 0.7)
    # min_k=3 > 2 neighbours: KNNBasic -> global mean (15 / 5 = 3.0); KNNWithMeans -> user mean 4
    mean_all = (4 + 2 + 1 + 5 + 3) / 5
    assert UserKNN(k=2, min_k=3, similarity="msd", feedback="explicit").fit(R).predict([0], [1])[0] == \
        pytest.approx(mean_all)
    assert UserKNN(k=2, min_k=3, similarity="msd", feedback="explicit", centering="mean").fit(R) \
        .predict([0], [1])[0] == pytest.approx(4.0)


# ----------------------------------------------------------------------------- MovieLens 100K

def _fold(k: int):
    def read(name):
        raw = np.loadtxt(data_file("ml-100k", name), dtype=np.int64)
        return raw[:, 0], raw[:, 1], raw[:, 2].astype(float)
    return read(f"u{k}.base"), read(f"u{k}.test")


@pytest.mark.slow
def test_ml100k_fold_rmse_mae_equal_surprise():
    """Surprise's README: KNNBasic / KNNWithMeans / KNNBaseline (user-based msd, k=40) RMSE
    0.980 / 0.951 / 0.931 over 5 folds. One fold here (u1), both libraries on the same split;
    benchmarks/bench_knn.py runs all five and times them."""
    surprise = pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    (bu, bi, br), (tu, ti, tr) = _fold(1)
    users, items = IdMap(np.union1d(bu, tu)), IdMap(np.union1d(bi, ti))
    train = Interactions.from_arrays(bu, bi, br, user_ids=users, item_ids=items)
    frame = pd.DataFrame({"u": bu, "i": bi, "r": br})
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    testset = list(zip(tu, ti, tr))
    for centering, name in SURPRISE_CLASSES.items():
        algo = getattr(surprise, name)(k=40, sim_options={"name": "msd", "user_based": True}, verbose=False)
        predictions = algo.fit(trainset).test(testset)
        want_rmse = surprise.accuracy.rmse(predictions, verbose=False)
        want_mae = surprise.accuracy.mae(predictions, verbose=False)
        model = UserKNN(k=40, similarity="msd", feedback="explicit", centering=centering,
                        rating_range=(1, 5)).fit(train)
        pred = model.predict(tu, ti, ids=True)
        rmse, mae = np.sqrt(np.mean((pred - tr) ** 2)), np.mean(np.abs(pred - tr))
        assert abs(rmse - want_rmse) < 0.005 and abs(mae - want_mae) < 0.005, (name, rmse, want_rmse)
        assert 0.9 < rmse < 1.02


def test_a_repeated_rating_counts_once_with_its_latest_value():
    # user 0 rated item 0 twice (2, then 5) and item 1 (3): its mean is (5 + 3) / 2 = 4
    inter = Interactions.from_arrays([0, 0, 0, 1, 1], [0, 0, 1, 0, 2], [2.0, 5.0, 3.0, 4.0, 1.0],
                                     timestamps=[1, 2, 1, 1, 1])
    model = UserKNN(similarity="msd", feedback="explicit", centering="mean", min_k=100).fit(inter)
    assert model.predict([0], [2], ids=True)[0] == pytest.approx(4.0)


@pytest.mark.parametrize("model_cls", [ItemKNN, UserKNN])
def test_partial_fit_replaces_ratings_and_equals_refit(model_cls):
    R = _continuous_ratings(seed=6)
    rng = np.random.default_rng(7)
    coo = R.tocoo()
    again = rng.choice(coo.nnz, 5, replace=False)          # five ratings given anew
    new = sp.csr_matrix((np.r_[1.0 + 4.0 * rng.random(5), [2.5, 4.0]],
                         (np.r_[coo.row[again], [3, 30]], np.r_[coo.col[again], [24, 7]])), shape=R.shape)
    params = dict(k=4, similarity="msd", feedback="explicit", centering="baseline", rating_range=(1, 5))
    model = model_cls(**params).fit(R).partial_fit(new)
    dense = R.toarray()
    dense[new.nonzero()] = new.data
    refit = model_cls(**params).fit(sp.csr_matrix(dense))
    users, items = np.divmod(np.arange(R.shape[0] * R.shape[1]), R.shape[1])
    np.testing.assert_allclose(model.predict(users, items), refit.predict(users, items), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- ratings of 0

def _zero_scale_frame(seed=11, n_users=12, n_items=9, density=0.45):
    """Integer ratings on -10..10 with many zeros, as Interactions and as a pandas frame."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    ratings = rng.choice(np.array([-10, -5, -2, 0, 0, 0, 3, 7, 10], dtype=float), size=users.size)
    assert (ratings == 0).sum() >= 5
    return (Interactions.from_arrays(users, items, ratings),
            pd.DataFrame({"u": users, "i": items, "r": ratings}))


@pytest.mark.parametrize("user_based", [True, False])
@pytest.mark.parametrize("centering", ["none", "mean", "baseline"])
@pytest.mark.parametrize("metric", ["msd", "pearson"])
def test_zero_ratings_are_ratings_as_in_surprise(user_based, centering, metric):
    surprise = pytest.importorskip("surprise")
    inter, frame = _zero_scale_frame()
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(-10, 10))).build_full_trainset()
    algo = getattr(surprise, SURPRISE_CLASSES[centering])(
        k=4, min_k=1, sim_options={"name": metric, "user_based": user_based}, verbose=False).fit(trainset)
    model = (UserKNN if user_based else ItemKNN)(k=4, similarity=metric, feedback="explicit",
                                                 centering=centering, rating_range=(-10, 10)).fit(inter)
    assert model.user_items_.nnz == len(frame), "every rating is stored, zeros included"
    u_ids, i_ids = inter.user_ids.to_numpy(), inter.item_ids.to_numpy()
    users, items = np.meshgrid(u_ids, i_ids, indexing="ij")
    users, items = users.ravel(), items.ravel()
    want = np.array([algo.predict(u, i).est for u, i in zip(users, items)])
    np.testing.assert_allclose(model.predict(users, items, ids=True), want, rtol=1e-5, atol=1e-5)


def test_a_user_whose_only_rating_is_zero_has_a_mean_of_zero():
    # user 2's only rating is 0: KNNWithMeans falls back to that mean (0), not to "no ratings"
    R = sp.csr_matrix((np.array([4.0, -6.0, 2.0, 8.0, 0.0]), (np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 0]))),
                      shape=(3, 2))
    assert R.nnz == 5
    model = UserKNN(similarity="msd", feedback="explicit", centering="mean", min_k=100).fit(R)
    assert model.means_[2] == 0.0 and model.user_items_.nnz == 5
    assert model.predict([2], [1])[0] == pytest.approx(0.0)
    assert model.predict([0], [1])[0] == pytest.approx(-1.0)


def test_partial_fit_keeps_zero_ratings():
    inter, _ = _zero_scale_frame(seed=12)
    half = len(inter) // 2
    first, second = inter.select(np.arange(half)), inter.select(np.arange(half, len(inter)))
    params = dict(k=4, similarity="msd", feedback="explicit", centering="mean", rating_range=(-10, 10))
    grown = UserKNN(**params).fit(first).partial_fit(second)
    whole = UserKNN(**params).fit(inter)
    assert grown.user_items_.nnz == whole.user_items_.nnz == len(inter)
    users = np.repeat(np.arange(inter.n_users), inter.n_items)
    items = np.tile(np.arange(inter.n_items), inter.n_users)
    np.testing.assert_allclose(grown.predict(users, items), whole.predict(users, items), rtol=1e-6, atol=1e-6)
