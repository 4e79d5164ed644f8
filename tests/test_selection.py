"""cross_validate, grid_search and bayes_search."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.evaluation import bayes_search, cross_validate, evaluate, grid_search

from evaluation_helpers import EmbeddingModel


def world(seed=0, n_users=60, n_items=40, d=3):
    """True embeddings; train = random interactions; test = each user's 3 best unseen items by the
    true scores, so a model with the true embeddings (noise 0) is perfect and noise hurts."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, d)), rng.normal(size=(n_items, d))
    train = sp.random(n_users, n_items, density=0.15, random_state=rng, format="csr")
    train.data[:] = 1
    scores = U @ V.T
    scores[train.nonzero()] = -np.inf
    best = np.argsort(-scores, axis=1)[:, :3]
    test = sp.csr_matrix((np.ones(best.size), (np.repeat(np.arange(n_users), 3), best.ravel())),
                         shape=(n_users, n_items))
    return U, V, train, test


def folds_of(seed=1, k=3):
    rng = np.random.default_rng(seed)
    U, V, train, test = world(seed)
    full = (train + test).tocoo()
    part = rng.integers(0, k, size=full.nnz)
    out = []
    for f in range(k):
        tr = sp.csr_matrix((full.data[part != f], (full.row[part != f], full.col[part != f])), shape=full.shape)
        te = sp.csr_matrix((full.data[part == f], (full.row[part == f], full.col[part == f])), shape=full.shape)
        out.append((tr, te))
    return U, V, out


def test_cross_validate_per_fold_and_summary():
    U, V, folds = folds_of()
    metrics = ["ndcg@5", "recall@10"]
    cv = cross_validate(lambda: EmbeddingModel(U, V, noise=0.3), folds=folds, metrics=metrics, progress=False)
    assert list(cv.folds.index) == [0, 1, 2]
    for f, (tr, te) in enumerate(folds):
        single = evaluate(EmbeddingModel(U, V, noise=0.3).fit(tr), tr, te, metrics)
        for m in metrics:
            assert cv.folds.loc[f, m] == pytest.approx(single.loc[m, "value"])
    for m in metrics:
        values = cv.folds[m].to_numpy()
        assert cv.summary.loc[m, "mean"] == pytest.approx(values.sum() / 3)
        assert cv.summary.loc[m, "std"] == pytest.approx(np.sqrt(((values - values.mean()) ** 2).sum() / 3))
    assert (cv.folds["fit_time"] >= 0).all() and "score_time" in cv.summary.index
    assert "summary" in repr(cv)


def test_cross_validate_threads_give_the_same_table():
    U, V, folds = folds_of(seed=2)
    one = cross_validate(lambda: EmbeddingModel(U, V, noise=0.5), folds=folds, metrics=["ndcg@5"], progress=False)
    two = cross_validate(lambda: EmbeddingModel(U, V, noise=0.5), folds=folds, metrics=["ndcg@5"], num_threads=2,
                         progress=False)
    np.testing.assert_array_equal(one.folds["ndcg@5"].to_numpy(), two.folds["ndcg@5"].to_numpy())


def test_cross_validate_with_data_split_folds():
    data = pytest.importorskip("recforge.data")
    split = pytest.importorskip("recforge.data.split")
    U, V, train, test = world(seed=3)
    inter = data.Interactions.from_csr((train + test).tocsr())
    cv = cross_validate(lambda: EmbeddingModel(U, V), inter, folds=4, metrics=["recall@10"], seed=5, progress=False)
    assert len(cv.folds) == 4
    # the same folds passed explicitly give the same table
    explicit = cross_validate(lambda: EmbeddingModel(U, V), folds=split.kfold(inter, k=4, seed=5),
                              metrics=["recall@10"], progress=False)
    np.testing.assert_allclose(cv.folds["recall@10"].to_numpy(), explicit.folds["recall@10"].to_numpy())


def test_grid_search_finds_the_noise_free_model():
    U, V, train, test = world(seed=4)
    made = []

    def make(noise, seed):
        made.append((noise, seed))
        return EmbeddingModel(U, V, noise=noise, seed=seed)

    res = grid_search(make, {"noise": [0.8, 0.0, 3.0], "seed": [0, 1]}, train, test, ["ndcg@3", "rmse"],
                      progress=False)
    assert sorted(made) == sorted((n, s) for n in (0.8, 0.0, 3.0) for s in (0, 1))
    assert len(res.results) == 6 and res.objective == "ndcg@3"
    assert res.best_params["noise"] == 0.0 and res.best_score == pytest.approx(1.0)  # true embeddings: perfect
    assert list(res.results["ndcg@3"]) == sorted(res.results["ndcg@3"], reverse=True)
    assert res.best_model.noise == 0.0 and res.best_model.is_fitted
    # rmse: lower is better
    by_rmse = grid_search(make, {"noise": [0.8, 0.0, 3.0], "seed": [0]}, train, test, ["ndcg@3", "rmse"],
                          objective="rmse", progress=False, num_threads=2)
    assert list(by_rmse.results["rmse"]) == sorted(by_rmse.results["rmse"])
    assert by_rmse.best_score == by_rmse.results["rmse"].min()


def test_grid_search_list_of_grids_and_bad_input():
    U, V, train, test = world(seed=5)
    make = lambda noise: EmbeddingModel(U, V, noise=noise)  # noqa: E731
    res = grid_search(make, [{"noise": [0.0]}, {"noise": [1.0, 2.0]}], train, test, ["recall@5"], progress=False)
    assert sorted(res.results["noise"]) == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="is not among the metrics"):
        grid_search(make, {"noise": [0.0]}, train, test, ["recall@5"], objective="ndcg@5")
    with pytest.raises(ValueError, match=r"grid\['noise'\] is empty"):
        grid_search(make, {"noise": []}, train, test, ["recall@5"])
    with pytest.raises(TypeError, match="must be a list of values"):
        grid_search(make, {"noise": 0.5}, train, test, ["recall@5"])
    with pytest.raises(ValueError, match="n_jobs"), pytest.warns(DeprecationWarning):
        grid_search(make, {"noise": [0.0]}, train, test, ["recall@5"], n_jobs=0)
    with pytest.raises(ValueError, match="num_threads"):
        grid_search(make, {"noise": [0.0]}, train, test, ["recall@5"], num_threads=-1)


def test_n_jobs_still_works_with_a_deprecation_warning_and_num_threads_0_means_every_core():
    U, V, train, test = world(seed=5)
    make = lambda noise: EmbeddingModel(U, V, noise=noise)  # noqa: E731
    grid = {"noise": [0.0, 1.0, 2.0]}
    new = grid_search(make, grid, train, test, ["recall@5"], num_threads=0, progress=False)
    with pytest.warns(DeprecationWarning, match="num_threads"):
        old = grid_search(make, grid, train, test, ["recall@5"], n_jobs=-1, progress=False)
    assert new.best_params == old.best_params
    np.testing.assert_array_equal(new.results["recall@5"].to_numpy(), old.results["recall@5"].to_numpy())


def test_bayes_search_is_seeded_and_reports_every_trial():
    pytest.importorskip("optuna")
    U, V, train, test = world(seed=6)
    make = lambda noise, d: EmbeddingModel(U, V, noise=noise)  # noqa: E731
    space = {"noise": (0.0, 3.0), "d": [1, 2]}
    a = bayes_search(make, space, train, test, ["ndcg@3"], n_trials=8, seed=3, progress=False)
    b = bayes_search(make, space, train, test, ["ndcg@3"], n_trials=8, seed=3, progress=False)
    assert len(a.results) == 8 and sorted(a.results["trial"]) == list(range(8))
    np.testing.assert_array_equal(a.results["noise"].to_numpy(), b.results["noise"].to_numpy())
    assert a.best_score == a.results["ndcg@3"].max()
    assert a.best_params == {k: a.results.loc[0, k] for k in ("noise", "d")}
    assert a.study.best_value == pytest.approx(a.best_score)


def test_bayes_search_space_forms():
    pytest.importorskip("optuna")
    U, V, train, test = world(seed=7)
    seen = []

    def make(noise, seed):
        seen.append((noise, seed))
        return EmbeddingModel(U, V, noise=noise, seed=seed)

    bayes_search(make, {"noise": (1e-3, 1.0, "log"), "seed": (0, 5)}, train, test, ["recall@5"], n_trials=5,
                 progress=False)
    assert all(1e-3 <= n <= 1.0 and isinstance(s, int) and 0 <= s <= 5 for n, s in seen)
    res = bayes_search(make, lambda trial: {"noise": trial.suggest_float("noise", 0, 1), "seed": 0},
                       train, test, ["recall@5"], n_trials=3, progress=False)
    assert len(res.results) == 3
    with pytest.raises(TypeError, match="space\\['noise'\\]"):
        bayes_search(make, {"noise": "high", "seed": [0]}, train, test, ["recall@5"], n_trials=1, progress=False)


def test_bayes_search_takes_optuna_distributions_through_the_public_suggest_api():
    pytest.importorskip("optuna")
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    U, V, train, test = world(seed=7)
    seen = []

    def make(noise, seed, scale):
        seen.append((noise, seed, scale))
        return EmbeddingModel(U, V, noise=noise, seed=seed)

    space = {"noise": FloatDistribution(0.0, 1.0, step=0.25), "seed": IntDistribution(2, 10, step=4),
             "scale": CategoricalDistribution(["a", "b"])}
    res = bayes_search(make, space, train, test, ["recall@5"], n_trials=6, progress=False)
    assert all(n in (0.0, 0.25, 0.5, 0.75, 1.0) and s in (2, 6, 10) and c in ("a", "b") for n, s, c in seen)
    assert all(isinstance(d, type(space[name])) for name, d in res.study.trials[0].distributions.items())


def test_missing_optional_libraries(monkeypatch):
    U, V, train, test = world(seed=8)
    make = lambda noise: EmbeddingModel(U, V, noise=noise)  # noqa: E731
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"recforge\[tune\]"):
        bayes_search(make, {"noise": (0.0, 1.0)}, train, test, ["recall@5"])
    # without tqdm there is simply no progress bar
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    res = grid_search(make, {"noise": [0.0, 1.0]}, train, test, ["recall@5"], progress=True)
    assert len(res.results) == 2


def test_progress_bar_runs_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    U, V, train, test = world(seed=9)
    grid_search(lambda noise: EmbeddingModel(U, V, noise=noise), {"noise": [0.0, 1.0]}, train, test,
                ["recall@5"], progress=True)
    assert "grid search" in capsys.readouterr().err


def test_folds_must_be_pairs():
    U, V, train, test = world(seed=10)
    with pytest.raises(TypeError, match="fold 0 must be a \\(train, test\\) pair"):
        cross_validate(lambda: EmbeddingModel(U, V), folds=[train], metrics=["recall@5"], progress=False)
    with pytest.raises(ValueError, match="folds is empty"):
        cross_validate(lambda: EmbeddingModel(U, V), folds=[], metrics=["recall@5"], progress=False)


def test_cross_validated_rating_errors_match_surprise_on_ml100k():
    """Peer check on real data: per-fold RMSE/MAE of a Surprise BaselineOnly model through
    cross_validate equal Surprise's own accuracy.rmse/mae on the same folds."""
    surprise = pytest.importorskip("surprise")
    import pandas as pd
    from surprise import accuracy

    from conftest import data_file

    raw = np.loadtxt(data_file("ml-100k", "u.data"), dtype=np.int64)
    users, items, ratings = raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 2].astype(float)
    shape = (users.max() + 1, items.max() + 1)
    part = np.random.default_rng(0).integers(0, 3, size=users.size)

    def matrix(mask):
        return sp.csr_matrix((ratings[mask], (users[mask], items[mask])), shape=shape)

    folds = [(matrix(part != f), matrix(part == f)) for f in range(3)]

    class SurpriseBaseline:
        def fit(self, train):
            coo = train.tocoo()
            frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data})
            data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5)))
            self.algo_ = surprise.BaselineOnly(verbose=False).fit(data.build_full_trainset())
            return self

        def predict(self, users, items):
            return np.array([self.algo_.predict(int(u), int(i)).est for u, i in zip(users, items)])

    models = []

    def make():
        models.append(SurpriseBaseline())
        return models[-1]

    cv = cross_validate(make, folds=folds, metrics=["rmse", "mae"], progress=False)
    for f, (_, test) in enumerate(folds):
        coo = test.tocoo()
        predictions = models[f].algo_.test(list(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist())))
        assert cv.folds.loc[f, "rmse"] == pytest.approx(accuracy.rmse(predictions, verbose=False), rel=1e-9)
        assert cv.folds.loc[f, "mae"] == pytest.approx(accuracy.mae(predictions, verbose=False), rel=1e-9)
