"""Content-based and hybrid models against neighbourhood CF: quality on MovieLens.

Datasets: ML-100K (item text: title + genres) and ml-latest-small (title + genres + tags),
implicit feedback (every rating = one interaction), no filtering. Splits: per-user random
80/20 (seed 0) and leave-last-out (each user's latest interaction), both keeping test
interactions whose item never occurs in train (``drop_unseen=False``). Full ranking over every
item not in the user's train set (``recforge.evaluate``): NDCG@10 and Recall@20, and the same
on the cold-start slice (only test interactions whose item is absent from train), ranked
among all items ("cold") and among the items absent from train only ("cold-only": the
new-item protocol, where a model without content scores every candidate 0 and falls back to
item-code order).

Models: ContentKNN with each encoder (tfidf, word2vec, bert, attributes over genres), ItemKNN
and UserKNN (k=40, cosine), and every hybrid over [ItemKNN, UserKNN, ContentKNN(tfidf)]:
WeightedHybrid (equal weights; minmax, its default, and zscore), VotingHybrid (rrf, borda),
LearnedHybrid (ridge, logistic, lambdarank; weights learned on a validation split carved from
train) and SwitchingHybrid(ItemKNN -> ContentKNN below 5 interactions, and for items with no
train interaction). Parameters are fixed in advance, never tuned on test. An item a component
cannot score (ItemKNN and UserKNN: an item absent from train) does not take that component's
minimum: Weighted and Voting share its weight among the components that know the item
(unknown="share", the default) or give it the component's mean term over the items it knows
(the "-mean" variants); Learned a learned constant per component (printed as "unknown w");
see recforge.models.hybrid.fusion.

The last lines summarise: per dataset and split, whether the best hybrid beats the best single
model on NDCG@10, and which models score above zero on the cold-start slice.

    OMP_NUM_THREADS=2 python benchmarks/bench_content_quality.py --threads 2 [--datasets ml-100k ml-latest-small]
        [--splits random leave-last-out] [--models ...] [--cache-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_content_common import data_root, print_table  # noqa: E402

import recforge  # noqa: E402
from recforge.data import split as splits  # noqa: E402
from recforge.datasets import movielens  # noqa: E402
from recforge.models import ItemKNN, UserKNN  # noqa: E402
from recforge.models.content import ContentKNN  # noqa: E402
from recforge.models.hybrid import LearnedHybrid, SwitchingHybrid, VotingHybrid, WeightedHybrid  # noqa: E402

FIELDS = {"ml-100k": ("title", "genres"), "ml-latest-small": ("title", "genres", "tags")}
SINGLE = ("ContentKNN-tfidf", "ContentKNN-word2vec", "ContentKNN-bert", "ContentKNN-attributes", "ItemKNN", "UserKNN")


def make_models(fields, threads: int, cache_dir: str | None):
    def content(encoder="tfidf", f=fields, **kw):
        opts = {"num_threads": threads} if encoder == "bert" else None
        return ContentKNN(encoder=encoder, fields=f, encoder_options=opts, cache_dir=cache_dir,
                          num_threads=threads, **kw)

    def cf():
        return [ItemKNN(k=40, num_threads=threads, progress=False), UserKNN(k=40, num_threads=threads, progress=False),
                content()]

    return {
        "ContentKNN-tfidf": lambda: content(),
        "ContentKNN-word2vec": lambda: content("word2vec"),
        "ContentKNN-bert": lambda: content("bert"),
        "ContentKNN-attributes": lambda: content("attributes", ("genres",)),
        "ItemKNN": lambda: ItemKNN(k=40, num_threads=threads, progress=False),
        "UserKNN": lambda: UserKNN(k=40, num_threads=threads, progress=False),
        "Weighted-minmax": lambda: WeightedHybrid(cf(), normalize="minmax"),
        "Weighted-zscore": lambda: WeightedHybrid(cf(), normalize="zscore"),
        "Voting-rrf": lambda: VotingHybrid(cf(), method="rrf"),
        "Voting-borda": lambda: VotingHybrid(cf(), method="borda"),
        "Weighted-minmax-mean": lambda: WeightedHybrid(cf(), normalize="minmax", unknown="mean"),
        "Weighted-zscore-mean": lambda: WeightedHybrid(cf(), normalize="zscore", unknown="mean"),
        "Voting-rrf-mean": lambda: VotingHybrid(cf(), method="rrf", unknown="mean"),
        "Voting-borda-mean": lambda: VotingHybrid(cf(), method="borda", unknown="mean"),
        "Learned-ridge": lambda: LearnedHybrid(cf(), learner="ridge"),
        "Learned-logistic": lambda: LearnedHybrid(cf(), learner="logistic"),
        "Learned-lambdarank": lambda: LearnedHybrid(cf(), learner="lambdarank"),
        "Switching": lambda: SwitchingHybrid(ItemKNN(k=40, num_threads=threads, progress=False), content(),
                                             min_interactions=5, min_item_interactions=1),
    }


class OnlyAmong:
    """A model whose recommend() never returns the ``banned`` items (here: every item seen in train)."""

    def __init__(self, model, banned: np.ndarray):
        self._model, self._banned = model, banned

    def recommend(self, users, n=10, **kwargs):
        return self._model.recommend(users, n=n, filter_items=self._banned, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def cold_slice(train, test):
    counts = np.bincount(train.items, minlength=train.n_items)
    return test.select(counts[test.items] == 0)


def run(dataset: str, split: str, names, threads: int, cache_dir):
    key = dataset.removeprefix("ml-")
    data = movielens(key, data_dir=data_root(), download=False).with_values(None)
    if split == "random":
        train, test = splits.random(data, 0.2, by_user=True, seed=0, drop_unseen=False)
    else:
        train, test = splits.leave_last_out(data, 1, drop_unseen=False)
    cold = cold_slice(train, test)
    factories = make_models(FIELDS[dataset], threads, cache_dir)
    rows = []
    for name in names:
        model = factories[name]()
        start = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        full = recforge.evaluate(model, train, test, ["ndcg@10", "recall@20"])
        eval_s = time.perf_counter() - start
        row = {"dataset": dataset, "split": split, "model": name,
               "ndcg@10": f"{full.loc['ndcg@10', 'value']:.4f}", "recall@20": f"{full.loc['recall@20', 'value']:.4f}"}
        if len(cold):
            c = recforge.evaluate(model, train, cold, ["ndcg@10", "recall@20"])
            row["cold ndcg@10"] = f"{c.loc['ndcg@10', 'value']:.4f}"
            row["cold recall@20"] = f"{c.loc['recall@20', 'value']:.4f}"
            warm = np.flatnonzero(np.bincount(train.items, minlength=train.n_items) > 0)
            c = recforge.evaluate(OnlyAmong(model, warm), train, cold, ["ndcg@10"])
            row["cold-only ndcg@10"] = f"{c.loc['ndcg@10', 'value']:.4f}"
        row["fit_s"] = f"{fit_s:.1f}"
        row["eval_s"] = f"{eval_s:.1f}"
        if hasattr(model, "weights_"):
            row["weights"] = np.array2string(model.weights_, precision=3)
            row["unknown w"] = np.array2string(model.unknown_weights_, precision=3)
        rows.append(row)
        print(row, flush=True)
    return rows, len(test), len(cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--splits", nargs="+", default=["random", "leave-last-out"])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default $RECFORGE_CACHE_DIR or ~/.cache/recforge)")
    args = parser.parse_args()
    names = args.models or list(make_models(("title",), 1, None))
    columns = ["dataset", "split", "model", "ndcg@10", "recall@20", "cold ndcg@10", "cold recall@20", "cold-only ndcg@10", "fit_s", "eval_s",
               "weights", "unknown w"]
    summary = []
    for dataset in args.datasets:
        for split in args.splits:
            rows, n_test, n_cold = run(dataset, split, names, args.threads, args.cache_dir)
            print(f"\n{dataset}, {split}: {n_test} test interactions, {n_cold} of them on items absent from train")
            print_table(rows, columns)
            singles = [r for r in rows if r["model"] in SINGLE]
            hybrids = [r for r in rows if r["model"] not in SINGLE]
            if singles and hybrids:
                bs = max(singles, key=lambda r: float(r["ndcg@10"]))
                bh = max(hybrids, key=lambda r: float(r["ndcg@10"]))
                verdict = "beats" if float(bh["ndcg@10"]) > float(bs["ndcg@10"]) else "does NOT beat"
                line = (f"{dataset} {split}: best hybrid {bh['model']} {bh['ndcg@10']} {verdict} best single "
                        f"{bs['model']} {bs['ndcg@10']} on NDCG@10")
                print(line + "\n")
                summary.append(line)
            if n_cold:
                above = [r["model"] for r in rows if float(r["cold ndcg@10"]) > 0 or float(r["cold recall@20"]) > 0]
                summary.append(f"{dataset} {split}: cold slice ({n_cold} interactions) above zero (NDCG@10 or "
                               f"Recall@20): {', '.join(above) or 'none'}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
