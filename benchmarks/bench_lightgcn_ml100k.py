"""LightGCN on MovieLens 100K under microsoft/recommenders' LightGCN protocol.

Protocol (their LightGCN deep dive): every rating is a positive; each user's ratings are split
75/25 at random (per-user stratified); dim 64, 3 layers, batch 1024, lr 0.005, decay 1e-4; top-10
with the train items removed; nDCG@10, precision@10 and recall@10 over the test users. They
report nDCG@10 0.4176 / P@10 0.3610 / R@10 0.1961 after 20 epochs and nDCG@10 0.4530 after 50.

``--split recommenders`` (default) is their very split (:func:`recforge.data.split.recommenders_stratified`,
seed 42, u.data in file order; checked row for row against their pandas code), keeping the 35 test
rows whose item has no train row, as they do; ``--split random`` is recforge's own per-user split
(``split.random(frac=0.25, by_user=True, seed=42)``, unseen test rows dropped). ``--init xavier``
(default) is their initialiser (Glorot uniform per table); ``--init normal`` uses ``--init-std``.
``--sampling user-batches`` (default) is their sampler: ``n_train // batch + 1`` full batches
per epoch (75,776 samples on this split) of uniform users (with replacement here: 943 users <
1024), one positive and one negative each; ``--sampling user`` draws ``n_train`` samples (74,992)
in ``ceil(n_train / batch)`` batches. Not reproduced: their Adam is TensorFlow's (epsilon added to
the bias-corrected root, torch's to the raw one) and their random streams are Python's. They print
the mean training loss (BPR + decay term): 0.150 after 20 epochs, 0.101 after 50; so does this.

The run trains 20 epochs, evaluates, then resumes from the safetensors checkpoint to 50 epochs
(the same run, not a second one) and evaluates again; it prints wall and CPU seconds of training.

    OMP_WAIT_POLICY=passive python benchmarks/bench_lightgcn_ml100k.py --threads 2
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from harness import data_root

import recforge
from recforge.data import split
from recforge.models import LightGCN

METRICS = ["ndcg@10", "precision@10", "recall@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", choices=["xavier", "normal"], default="xavier")
    parser.add_argument("--init-std", type=float, default=0.1)
    parser.add_argument("--split", choices=["recommenders", "random"], default="recommenders")
    parser.add_argument("--sampling", choices=["user-batches", "user"], default="user-batches")
    args = parser.parse_args()
    ratings = recforge.datasets.movielens("100k", data_dir=data_root(), metadata=False)
    if args.split == "recommenders":
        train, test = split.recommenders_stratified(ratings, 0.75, seed=42)
    else:
        train, test = split.random(ratings, frac=0.25, by_user=True, seed=42)
    print(f"split {args.split}, init {args.init}, sampling {args.sampling}" + (f" std {args.init_std}" if args.init == "normal" else "")
          + f", seed {args.seed}: train {len(train)} test {len(test)} users {train.n_users} items {train.n_items}; "
          f"threads {args.threads}; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as checkpoints:
        wall = cpu = 0.0
        for epochs in args.epochs:
            model = LightGCN(dim=64, layers=3, batch_size=1024, lr=0.005, reg=1e-4, epochs=epochs, device="cpu",
                             num_threads=args.threads, seed=args.seed, checkpoint_dir=checkpoints,
                             init=args.init, init_std=args.init_std, sampling=args.sampling)
            w0, c0 = time.perf_counter(), time.process_time()
            model.fit(train)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            table = recforge.evaluate(model, train, test, metrics=METRICS)
            values = "  ".join(f"{m} {table.loc[m, 'value']:.4f}" for m in METRICS)
            sections = model.train_history_.records[-1].sections
            print(f"epochs {epochs}: {values}  loss {model.train_history_.records[-1].loss:.5f} | training wall {wall:.1f} s, CPU {cpu:.1f} s, "
                  f"load {os.getloadavg()[0]:.1f}; last epoch {model.train_history_.records[-1].seconds:.2f} s: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in sections.items()), flush=True)


if __name__ == "__main__":
    main()
