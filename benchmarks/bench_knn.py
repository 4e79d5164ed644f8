"""k-NN models against their peers: Surprise for rating prediction, implicit for top-N.

1. Rating prediction, MovieLens 100K, the five predefined folds u1..u5 (the same for both):
   recforge UserKNN(feedback="explicit", similarity="msd", k=40, centering=none|mean|baseline)
   against Surprise's KNNBasic / KNNWithMeans / KNNBaseline (user-based msd, k=40). Prints
   mean RMSE / MAE of both (they must agree within 0.005) and fit+predict seconds summed over
   the folds (recforge: median of --repeat runs; Surprise: one run), and the speed ratio.
2. Top-N, full ranking (recforge.evaluate, seen items excluded): MovieLens 100K (u1 split,
   binarised) and Gowalla (LightGCN's predefined split): MostPopular, ItemKNN and UserKNN
   (cosine, k) and implicit's CosineRecommender (K = k + 1: its lists include the item itself),
   NDCG@10 and recall@20, fit and recommend seconds.

Everything runs in this process with the same thread count (--threads; Surprise is single-threaded).

    python benchmarks/bench_knn.py --threads 1 --folds 5 --datasets ml100k gowalla
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(__file__))
from common import data_root, measure, print_table  # noqa: E402

import recforge  # noqa: E402
from recforge.data import IdMap, Interactions  # noqa: E402
from recforge.models import ItemKNN, MostPopular, UserKNN  # noqa: E402

SURPRISE = {"none": "KNNBasic", "mean": "KNNWithMeans", "baseline": "KNNBaseline"}


def read_fold(k: int):
    folder = data_root() / "ml-100k"
    base = np.loadtxt(folder / f"u{k}.base", dtype=np.int64)
    test = np.loadtxt(folder / f"u{k}.test", dtype=np.int64)
    return base, test


def rating_benchmark(folds: int, threads: int, repeat: int) -> None:
    import pandas as pd
    import surprise

    rows = []
    for centering, name in SURPRISE.items():
        ours_err, theirs_err, ours_t, theirs_t = [], [], 0.0, 0.0
        for k in range(1, folds + 1):
            base, test = read_fold(k)
            truth = test[:, 2].astype(float)
            users, items = IdMap(np.union1d(base[:, 0], test[:, 0])), IdMap(np.union1d(base[:, 1], test[:, 1]))
            train = Interactions.from_arrays(base[:, 0], base[:, 1], base[:, 2].astype(float),
                                             user_ids=users, item_ids=items)

            def run_ours():
                model = UserKNN(k=40, similarity="msd", feedback="explicit", centering=centering,
                                rating_range=(1, 5), num_threads=threads, progress=False).fit(train)
                return model.predict(test[:, 0], test[:, 1], ids=True)

            seconds, _, pred = measure(run_ours, repeat=repeat, warmup=1 if k == 1 else 0)
            ours_t += seconds
            ours_err.append((np.sqrt(np.mean((pred - truth) ** 2)), np.mean(np.abs(pred - truth))))

            frame = pd.DataFrame({"u": base[:, 0], "i": base[:, 1], "r": base[:, 2].astype(float)})
            trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
            testset = list(zip(test[:, 0], test[:, 1], truth))
            t0 = time.perf_counter()
            algo = getattr(surprise, name)(k=40, sim_options={"name": "msd", "user_based": True}, verbose=False)
            predictions = algo.fit(trainset).test(testset)
            theirs_t += time.perf_counter() - t0
            theirs_err.append((surprise.accuracy.rmse(predictions, verbose=False),
                               surprise.accuracy.mae(predictions, verbose=False)))
        ours, theirs = np.mean(ours_err, axis=0), np.mean(theirs_err, axis=0)
        assert np.all(np.abs(ours - theirs) < 0.005), f"{name}: recforge {ours} vs Surprise {theirs}"
        rows.append({"model": f"UserKNN centering={centering} / {name}",
                     "rmse recforge": f"{ours[0]:.4f}", "rmse surprise": f"{theirs[0]:.4f}",
                     "mae recforge": f"{ours[1]:.4f}", "mae surprise": f"{theirs[1]:.4f}",
                     "recforge s": f"{ours_t:.2f}", "surprise s": f"{theirs_t:.2f}",
                     "speed-up": f"{theirs_t / ours_t:.1f}x"})
    print(f"\nRating prediction, MovieLens 100K, {folds} folds (u1..u{folds}), user-based msd, k=40; "
          f"fit+predict seconds summed over folds, recforge threads={threads}")
    print_table(rows, list(rows[0]))


# ----------------------------------------------------------------------------- top-N

class ImplicitAdapter:
    """implicit's CosineRecommender behind recforge.evaluate's recommend(users, n, exclude_seen)."""

    def __init__(self, K: int, threads: int):
        from implicit.nearest_neighbours import CosineRecommender
        self.model = CosineRecommender(K=K, num_threads=threads)

    def fit(self, R: sp.csr_matrix):
        self.R = R.tocsr()
        with warnings.catch_warnings():   # implicit warns about a conversion it makes itself
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model.fit(self.R, show_progress=False)
        return self

    def recommend(self, users, n=10, exclude_seen=True):
        items, scores = self.model.recommend(users, self.R[users], N=n, filter_already_liked_items=exclude_seen)
        return np.where(np.isfinite(scores) & (scores > -1e30), items, -1), scores


def ml100k_split():
    base, test = read_fold(1)
    users, items = IdMap(np.union1d(base[:, 0], test[:, 0])), IdMap(np.union1d(base[:, 1], test[:, 1]))
    train = Interactions.from_arrays(base[:, 0], base[:, 1], user_ids=users, item_ids=items)
    held = Interactions.from_arrays(test[:, 0], test[:, 1], user_ids=users, item_ids=items)
    return train, held


def gowalla_split():
    from recforge.datasets import lightgcn
    split = lightgcn("gowalla", data_dir=data_root(), download=False)
    return split.train, split.test


def topn_benchmark(datasets: list[str], k: int, threads: int) -> None:
    rows = []
    for dataset in datasets:
        train, test = ml100k_split() if dataset == "ml100k" else gowalla_split()
        R = train.to_csr(values=False)
        T = test.to_csr(values=False)
        candidates = [("MostPopular", lambda: MostPopular()),
                      (f"ItemKNN cosine k={k}", lambda: ItemKNN(k=k, similarity="cosine", num_threads=threads,
                                                                progress=False)),
                      (f"UserKNN cosine k={k}", lambda: UserKNN(k=k, similarity="cosine", num_threads=threads,
                                                                progress=False)),
                      (f"implicit CosineRecommender K={k + 1}", lambda: ImplicitAdapter(k + 1, threads))]
        fitted = {}
        for label, make in candidates:
            t0 = time.perf_counter()
            model = make().fit(R)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = recforge.evaluate(model, R, T, metrics=["ndcg@10", "recall@20"])
            eval_s = time.perf_counter() - t0
            fitted[label] = model
            rows.append({"dataset": dataset, "model": label, "ndcg@10": f"{out.loc['ndcg@10', 'value']:.4f}",
                         "recall@20": f"{out.loc['recall@20', 'value']:.4f}", "fit s": f"{fit_s:.2f}",
                         "recommend+eval s": f"{eval_s:.2f}"})
        # agreement of the scores of recforge's ItemKNN and implicit on the same users
        ours = fitted[f"ItemKNN cosine k={k}"]
        theirs = fitted[f"implicit CosineRecommender K={k + 1}"]
        users = np.arange(min(2000, R.shape[0]))
        a_items, a_scores = ours.recommend(users, n=20)
        b_items, b_scores = theirs.recommend(users, n=20)
        close = np.isclose(a_scores, b_scores, rtol=1e-4, atol=1e-5).mean()
        same = (a_items == b_items).mean()
        print(f"{dataset}: ItemKNN vs implicit on {users.size} users: {close:.2%} of top-20 scores equal "
              f"(rtol 1e-4), {same:.2%} same items (0/1 data: tied similarities may keep other neighbours)")
        # the same similarity lists (implicit's, its self entries removed) scored by recforge
        S = theirs.model.similarity.tocsr().astype(np.float32)
        S.setdiag(0)
        S.eliminate_zeros()
        ours.similarity_ = S
        ours._prepare()
        c_items, c_scores = ours.recommend(users, n=20)
        close = np.isclose(c_scores, b_scores, rtol=1e-4, atol=1e-5).mean()
        same = (c_items == b_items).mean()
        print(f"{dataset}: recforge scoring implicit's own neighbour lists: {close:.2%} of top-20 scores equal "
              f"(rtol 1e-4), {same:.2%} same items (equal scores may be ordered differently)")
    print(f"\nTop-N, full ranking, seen items excluded, threads={threads}")
    print_table(rows, list(rows[0]))


def partial_fit_benchmark(datasets: list[str], k: int, threads: int) -> None:
    """ItemKNN.partial_fit with a few hundred new interactions against a full refit (checked equal)."""
    rows = []
    for dataset, n_new in ((d, m) for d in datasets for m in (20, 500)):
        train, test = ml100k_split() if dataset == "ml100k" else gowalla_split()
        R = train.to_csr(values=False)
        T = test.to_csr(values=False).tocoo()
        pick = np.random.default_rng(0).choice(T.nnz, min(n_new, T.nnz), replace=False)
        new = sp.csr_matrix((np.ones(pick.size, np.float32), (T.row[pick], T.col[pick])), shape=R.shape)

        def make():
            return ItemKNN(k=k, similarity="cosine", num_threads=threads, progress=False)

        base = make().fit(R)
        state = base.similarity_, base.user_items_
        def run_partial():
            base.similarity_, base.user_items_ = state
            base.n_users_, base.n_items_ = R.shape
            return base.partial_fit(new).similarity_

        partial_s, _, S_partial = measure(run_partial, repeat=3, warmup=0)
        refit_s, _, refit = measure(lambda: make().fit(R + new), repeat=3, warmup=0)
        diff = abs(S_partial - refit.similarity_).max()
        assert diff < 1e-5, f"partial_fit differs from a refit by {diff}"
        touched = np.unique(new.indices).size
        rows.append({"dataset": dataset, "new interactions": pick.size, "items touched": touched,
                     "partial_fit s": f"{partial_s:.3f}", "refit s": f"{refit_s:.3f}",
                     "speed-up": f"{refit_s / partial_s:.1f}x", "max |difference|": f"{diff:.1e}"})
    print(f"\nItemKNN(cosine, k={k}).partial_fit against a full refit, threads={threads}")
    print_table(rows, list(rows[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=50, help="neighbours for the top-N models")
    parser.add_argument("--datasets", nargs="*", default=["ml100k", "gowalla"])
    parser.add_argument("--skip-rating", action="store_true")
    args = parser.parse_args()
    if not args.skip_rating:
        rating_benchmark(args.folds, args.threads, args.repeat)
    if args.datasets:
        topn_benchmark(args.datasets, args.k, args.threads)
        partial_fit_benchmark(args.datasets, args.k, args.threads)


if __name__ == "__main__":
    main()
