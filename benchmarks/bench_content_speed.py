"""ContentKNN(tfidf) against the obvious scikit-learn route, and BERT encoding throughput.

Catalogue: ml-latest-small's 9,742 movies (movies.csv; text = title + genres + tags) and its
610 users' ratings as implicit interactions. Both routes run in this process on the same texts
and thread count (--threads; BLAS limited with threadpoolctl), end to end:

- recforge: ``ContentKNN(fields=("title", "genres", "tags")).fit(data)`` then
  ``recommend(all users, n=10)`` (TfidfVectorizer inside; sparse profiles through similarity_topk);
- scikit-learn, item-item (the obvious route): ``TfidfVectorizer().fit_transform`` +
  ``cosine_similarity(X)`` (items x items) + user scores ``W @ S`` (W: each user's history,
  rows summing to 1) + seen items masked + ``argsort``;
- scikit-learn, profiles (a smarter route, for reference): ``cosine_similarity(W @ X, X)``
  instead of the item-item matrix.

Prints median seconds over --repeat runs (after a warm-up), the ratios, and how many of the
610 top-10 lists agree exactly (a disagreement must be an exchange of scores tied within
1e-6). Then BERT: texts/s encoding --bert-texts catalogue texts with all-MiniLM-L6-v2 on
--threads torch threads (model loading excluded).

    OMP_NUM_THREADS=2 python benchmarks/bench_content_speed.py --threads 2 --repeat 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(__file__))
from bench_content_common import data_root, measure  # noqa: E402

from recforge.data import IdMap, Interactions  # noqa: E402
from recforge.models.content import ContentKNN  # noqa: E402


def catalogue():
    import pandas as pd
    folder = data_root() / "ml-latest-small"
    movies = pd.read_csv(folder / "movies.csv").set_index("movieId")
    tags = pd.read_csv(folder / "tags.csv", dtype={"tag": str}).dropna(subset=["tag"]).drop_duplicates(["movieId", "tag"])
    movies["tags"] = tags.groupby("movieId")["tag"].agg("|".join).reindex(movies.index).fillna("")
    ratings = pd.read_csv(folder / "ratings.csv")
    data = Interactions.from_arrays(ratings["userId"].to_numpy(), ratings["movieId"].to_numpy(),
                                    item_ids=IdMap(movies.index.to_numpy()), item_metadata=movies)
    return data, movies


def sklearn_route(texts, R, item_item: bool):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity
    X = TfidfVectorizer().fit_transform(texts)
    W = sp.csr_matrix((R > 0).astype(np.float64))
    W = sp.diags(1.0 / np.maximum(np.asarray(W.sum(axis=1)).ravel(), 1)) @ W
    if item_item:
        scores = np.asarray(W @ cosine_similarity(X))
    else:
        scores = cosine_similarity(W @ X, X) * np.asarray(np.sqrt((W @ X).multiply(W @ X).sum(axis=1)))
    coo = R.tocoo()
    scores[coo.row, coo.col] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return top, np.take_along_axis(scores, top, axis=1)


def agreement(a_items, a_scores, b_items, b_scores):
    same = np.all(a_items == b_items, axis=1)
    tied = np.allclose(a_scores, b_scores, rtol=1e-5, atol=1e-6)
    return int(same.sum()), tied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bert-texts", type=int, default=2000)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    data, movies = catalogue()
    R = data.to_csr()
    users = np.arange(data.n_users)
    model = ContentKNN(fields=("title", "genres", "tags"), num_threads=args.threads)
    texts = model._documents(movies)
    print(f"{data.n_users} users x {data.n_items} items, {R.nnz} interactions; threads {args.threads}; "
          f"load {os.getloadavg()[0]:.1f}")

    def ours():
        m = ContentKNN(fields=("title", "genres", "tags"), num_threads=args.threads).fit(data)
        return m.recommend(users, n=10)

    with threadpool_limits(args.threads):
        t_ours, s_ours, (oi, os_) = measure(ours, repeat=args.repeat)
        t_ii, s_ii, (ii, is_) = measure(lambda: sklearn_route(texts, R, True), repeat=args.repeat)
        t_pr, s_pr, (pi, ps) = measure(lambda: sklearn_route(texts, R, False), repeat=args.repeat)
    for name, t, spread, items, scores in (("sklearn item-item", t_ii, s_ii, ii, is_),
                                           ("sklearn profiles", t_pr, s_pr, pi, ps)):
        same, close = agreement(oi, os_, items, scores)
        print(f"{name:18s} {t:7.3f} s (spread {spread:.3f})  recforge {t_ours:.3f} s (spread {s_ours:.3f})  "
              f"speed-up x{t / t_ours:.1f}  identical top-10 lists {same}/{len(users)}  scores agree: {close}")
        if same < len(users):
            bad = np.flatnonzero(np.any(oi != items, axis=1))
            gaps = [np.abs(np.diff(np.sort(scores[u]))).min() for u in bad[:5]]
            print(f"  differing users {bad[:10].tolist()}; smallest score gaps in their lists {gaps}")
    print(f"load after: {os.getloadavg()[0]:.1f}")

    from recforge.models.content.encoders import BertEncoder
    enc = BertEncoder(num_threads=args.threads, batch_size=64)
    sample = texts[: args.bert_texts]
    enc.encode(sample[:64])                                   # load the model, warm up
    start = time.perf_counter()
    enc.encode(sample)
    secs = time.perf_counter() - start
    print(f"BERT all-MiniLM-L6-v2: {len(sample)} texts in {secs:.1f} s = {len(sample) / secs:.0f} texts/s on "
          f"{args.threads} threads (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
