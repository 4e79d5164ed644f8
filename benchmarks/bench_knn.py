"""k-NN models against their peers: Surprise for rating prediction, implicit for top-N.

* "UserKNN msd k=40 centering=<c> <size>": recforge ``UserKNN(feedback="explicit",
  similarity="msd", k=40, centering=c)`` against Surprise's KNNBasic / KNNWithMeans /
  KNNBaseline (user-based msd, k=40; recforge.bench.model_peers), fit + predict over MovieLens
  100K's predefined folds u1..u5 (``ml100k``) or over fold u1 cut to its first 100 users
  (``tiny``). Checked before timing: mean RMSE and MAE of the two within 0.005.
* "ItemKNN cosine k=50 fit <size>": recforge ``ItemKNN`` against implicit's CosineRecommender
  (K = 51: its lists include the item itself). Checked: the neighbour lists' scores agree rank
  by rank (recforge.bench.agreement.same_topk_scores).
* "ItemKNN cosine k=50 recommend <size>": top-20 for every user, seen items excluded. Checked:
  each library's scores equal the brute-force R[u] @ S top-20 of its own neighbour lists (on
  0/1 data tied similarities let the two keep different neighbours, so their lists may differ).
* "ItemKNN partial_fit <size>": ``partial_fit`` with 20 / 500 new interactions against a refit
  (setup, a fresh fit, untimed); checked: the updated similarity equals the refit's within 1e-5.

    pytest benchmarks/bench_knn.py --benchmark-only -k ml100k --bench-threads 1
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from benchmarks.harness import data_root, dataset_matrix

from recforge.bench import agreement
from recforge.bench.inputs import synthetic

SIZES = ("tiny", "ml100k", "gowalla")
CENTERINGS = ("none", "mean", "baseline")
K_RATING, K_TOPN, N = 40, 50, 20


def rating_folds(size: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) rows (user, item, rating) of ML-100K's folds u1..u5, or u1 cut for tiny."""
    folder = data_root() / "ml-100k"
    if not folder.is_dir():
        pytest.skip(f"ml-100k not found under {data_root()} (set RECFORGE_DATA_DIR)")
    folds = []
    for k in (1,) if size == "tiny" else range(1, 6):
        base = np.loadtxt(folder / f"u{k}.base", dtype=np.int64)
        test = np.loadtxt(folder / f"u{k}.test", dtype=np.int64)
        if size == "tiny":
            base, test = base[base[:, 0] <= 100], test[test[:, 0] <= 100]
        folds.append((base, test))
    return folds


def recforge_rating(folds, centering: str, threads: int) -> list[np.ndarray]:
    from recforge.data import IdMap, Interactions
    from recforge.models import UserKNN

    predictions = []
    for base, test in folds:
        users = IdMap(np.union1d(base[:, 0], test[:, 0]))
        items = IdMap(np.union1d(base[:, 1], test[:, 1]))
        train = Interactions.from_arrays(base[:, 0], base[:, 1], base[:, 2].astype(float), user_ids=users,
                                         item_ids=items)
        model = UserKNN(k=K_RATING, similarity="msd", feedback="explicit", centering=centering, rating_range=(1, 5),
                        num_threads=threads, progress=False).fit(train)
        predictions.append(model.predict(test[:, 0], test[:, 1], ids=True))
    return predictions


def surprise_rating(folds, centering: str) -> list[np.ndarray]:
    from recforge.bench.model_peers import surprise_knn_predict

    return [surprise_knn_predict(base, test, centering, k=K_RATING) for base, test in folds]


def errors(folds, predictions) -> np.ndarray:
    """Mean over folds of (RMSE, MAE)."""
    out = [(np.sqrt(np.mean((p - t[:, 2]) ** 2)), np.mean(np.abs(p - t[:, 2]))) for (_, t), p in zip(folds, predictions)]
    return np.mean(out, axis=0)


@pytest.mark.parametrize("impl", ["recforge", "surprise"])
@pytest.mark.parametrize("centering", CENTERINGS)
def test_userknn_rating_prediction(benchmark, size, centering, impl, threads):
    if size == "gowalla":
        pytest.skip("rating prediction needs ratings: ML-100K only")
    pytest.importorskip("surprise")
    folds = rating_folds(size)
    benchmark.group = f"UserKNN msd k={K_RATING} centering={centering} {size}"
    ours = errors(folds, recforge_rating(folds, centering, threads))
    run = (lambda: recforge_rating(folds, centering, threads)) if impl == "recforge" else \
        (lambda: surprise_rating(folds, centering))
    got = ours if impl == "recforge" else errors(folds, run())
    theirs = errors(folds, surprise_rating(folds, centering)) if impl == "recforge" else got
    assert np.all(np.abs(ours - theirs) < 0.005), f"RMSE/MAE recforge {ours} vs Surprise {theirs}"
    benchmark.extra_info.update(rmse=float(got[0]), mae=float(got[1]), folds=len(folds),
                                agreement=f"RMSE/MAE recforge {ours.round(4)} vs Surprise {theirs.round(4)}")
    benchmark(run)


def topn_matrix(size: str) -> sp.csr_matrix:
    return synthetic("tiny").R if size == "tiny" else dataset_matrix(size)


def recforge_itemknn(R, threads):
    from recforge.models import ItemKNN

    return ItemKNN(k=K_TOPN, similarity="cosine", num_threads=threads, progress=False).fit(R)


def implicit_itemknn(R, threads):
    from recforge.bench.model_peers import ImplicitCosineTopN

    return ImplicitCosineTopN(K_TOPN, threads).fit(R)


def similarity_of(model) -> sp.csr_matrix:
    return model.model.similarity if hasattr(model, "model") else model.similarity_


@pytest.mark.parametrize("impl", ["recforge", "implicit"])
def test_itemknn_fit(benchmark, size, impl, threads):
    pytest.importorskip("implicit")
    R = topn_matrix(size)
    benchmark.group = f"ItemKNN cosine k={K_TOPN} fit {size}"
    fit = (lambda: recforge_itemknn(R, threads)) if impl == "recforge" else (lambda: implicit_itemknn(R, threads))
    ours = similarity_of(recforge_itemknn(R, threads))
    theirs = similarity_of(fit())
    terms = int(np.diff(R.tocsc().indptr).max())
    ok, detail = agreement.same_topk_scores(agreement.topk_rows(ours, K_TOPN), agreement.topk_rows(theirs, K_TOPN),
                                            terms)
    assert ok, f"neighbour lists disagree: {detail}"
    benchmark.extra_info.update(agreement=detail)
    benchmark(fit)


def brute_force_top_scores(R: sp.csr_matrix, S: sp.csr_matrix, users: np.ndarray, n: int) -> np.ndarray:
    """Top-n of R[u] @ S without the items u has seen (the diagonal of S left out), best first."""
    S = sp.csr_matrix(S, dtype=np.float64, copy=True)
    S.setdiag(0)
    scores = (R[users].astype(np.float64) @ S).toarray()
    scores[R[users].nonzero()] = -np.inf
    return -np.sort(-scores, axis=1)[:, :n]


@pytest.mark.parametrize("impl", ["recforge", "implicit"])
def test_itemknn_recommend(benchmark, size, impl, threads):
    pytest.importorskip("implicit")
    R = topn_matrix(size)
    model = recforge_itemknn(R, threads) if impl == "recforge" else implicit_itemknn(R, threads)
    users = np.arange(R.shape[0])
    benchmark.group = f"ItemKNN cosine k={K_TOPN} recommend top-{N} {size}"
    _, scores = model.recommend(users, n=N, exclude_seen=True)
    sample = users[:: max(1, users.size // 500)]
    expected = brute_force_top_scores(R, similarity_of(model), sample, N)
    got = np.where(np.isfinite(expected), np.asarray(scores, dtype=np.float64)[sample], -np.inf)
    present = np.isfinite(expected) & (expected > 0)
    assert np.allclose(got[present], expected[present], rtol=1e-4, atol=1e-5), "top-N scores differ from R @ S"
    benchmark.extra_info.update(agreement=f"top-{N} scores of {sample.size} users equal brute-force R[u] @ S")
    benchmark(lambda: model.recommend(users, n=N, exclude_seen=True))


@pytest.mark.parametrize("impl", ["partial_fit-20", "partial_fit-500", "refit"])
def test_itemknn_partial_fit(benchmark, size, impl, threads):
    if size == "gowalla":
        pytest.skip("partial_fit runs on ML-100K and tiny")
    R = topn_matrix(size)
    added = 20 if impl == "partial_fit-20" else 500
    rng = np.random.default_rng(0)
    free = np.flatnonzero(R.toarray().ravel() == 0)
    codes = rng.choice(free, size=min(added, free.size), replace=False)
    new = sp.csr_matrix((np.ones(codes.size, np.float32), (codes // R.shape[1], codes % R.shape[1])), shape=R.shape)
    benchmark.group = f"ItemKNN cosine k={K_TOPN} partial_fit {size}"
    refit = recforge_itemknn(R + new, threads)
    if impl == "refit":
        benchmark(lambda: recforge_itemknn(R + new, threads))
        return
    updated = recforge_itemknn(R, threads).partial_fit(new)
    diff = abs(similarity_of(updated) - similarity_of(refit)).max()
    assert diff < 1e-5, f"partial_fit differs from a refit by {diff}"
    benchmark.extra_info.update(agreement=f"max |partial_fit - refit| {diff:.1e}", added=int(codes.size))
    benchmark.pedantic(lambda model: model.partial_fit(new), setup=lambda: ((recforge_itemknn(R, threads),), {}),
                       rounds=5, warmup_rounds=0)
