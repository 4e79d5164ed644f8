"""Does ``item_init="text"`` help SASRec? MovieLens leave-one-out, random vs text init, warm vs cold items.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/bench_sasrec_text_init.py --dataset 100k \
        --inits random,text --minutes 12 --log ../text-init.jsonl

MovieLens (``--dataset 100k``: titles + genres; ``latest-small``: titles + genres + tags), each
user's ratings in time order, split leave-one-out (last item test, second-last validation,
the rest trained on). For each init, SASRec is trained with early stopping on validation
NDCG@10 under a wall-clock budget (``--minutes``, per init; epochs are run in chunks of
``--chunk`` and no chunk is started that the last one's duration says would overrun), then the
best weights are evaluated on the test stage by full ranking (history excluded), HR@10 and
NDCG@10:

* overall (every test user);
* by how often the user's test item occurs in the training sequences: ``cold`` (0: the item was
  never a training input or target), ``rare`` (1-5), ``warm`` (> 5).

``--holdout-items F`` removes a uniform random fraction F of the items from every training
sequence (and drops validation users whose validation item is one of them), so the cold slice
is the test users whose next item is one of those items (plus items that only ever occur as a
last item). Test histories are unchanged: held-out items still appear there as inputs.

What "cold" measures here: the cold items are in the catalogue (their rows exist and are
scored), but no training sequence holds them. Their embedding rows are still updated — with the
``ce`` loss every item is in the softmax's denominator, so each step pushes their scores down;
with ``bce`` whenever one is drawn as a negative — so a cold item's row is its init (random or
text) moved only by negative gradients. Nothing is frozen: a model that keeps text rows of
never-seen items unchanged would be a different method, not measured here.

Besides the trained model as it is, two cold-row variants are evaluated (the same network and
histories; only the cold items' rows of the scored item table change): for the text init, each
cold row put back to its initial text row (what "never updated" would give), and, for both
inits, cold rows predicted from the items' raw encoder vectors by a ridge map fitted on the warm
items (text vector -> trained row), a post-hoc cold-start mapping.

Every line written is JSON: per-epoch validation, then one ``result`` line per init with the
slices' sizes and metrics, the load average and the wall seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

#: test items by their number of occurrences in the training sequences
#: ridge penalty of the text -> trained-row map (cold_row_variants); not tuned
RIDGE = 1.0
SLICES = {"cold (0 train occurrences)": (0, 0), "rare (1-5)": (1, 5), "warm (>5)": (6, np.inf)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="100k", choices=["100k", "latest-small"])
    p.add_argument("--data-dir", default=os.environ.get("RECFORGE_DATA_DIR", "/work/shared/data"))
    p.add_argument("--inits", default="random,text")
    p.add_argument("--encoder", default="bert")
    p.add_argument("--fields", default="title,genres,tags")
    p.add_argument("--loss", default="ce", choices=["bce", "sampled_softmax", "ce"])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--chunk", type=int, default=5, help="epochs per fit call (the budget is checked between)")
    p.add_argument("--minutes", type=float, default=12.0, help="training wall-clock budget per init")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout-items", type=float, default=0.0,
                   help="fraction of items (uniform, seeded) removed from all training sequences: a true cold slice")
    p.add_argument("--log", default=None)
    return p.parse_args(argv)


def slice_metrics(ranks: np.ndarray, counts: np.ndarray, k: int = 10) -> dict:
    """HR@k = [r < k] and NDCG@k = [r < k] / log2(r + 2) (r: 0-based rank, k when not in the top
    k) averaged over all users and over each slice of SLICES."""
    hit = ranks < k
    gain = np.where(hit, 1.0 / np.log2(np.minimum(ranks, k) + 2.0), 0.0)
    out = {"all": {"users": int(ranks.size), "hr@10": float(hit.mean()), "ndcg@10": float(gain.mean())}}
    for name, (lo, hi) in SLICES.items():
        at = (counts >= lo) & (counts <= hi)
        out[name] = {"users": int(at.sum()), "hr@10": float(hit[at].mean()) if at.any() else None,
                     "ndcg@10": float(gain[at].mean()) if at.any() else None}
    return out


def held_out_items(n_items: int, fraction: float, seed: int) -> np.ndarray:
    """A uniform random ``fraction`` of the item codes, removed from every training sequence."""
    rng = np.random.default_rng(seed + 7919)
    return np.sort(rng.choice(n_items, size=int(round(fraction * n_items)), replace=False)).astype(np.int64)


def sequences_as_interactions(sequences, user_ids, item_ids):
    """Interactions of per-user code sequences (positions as timestamps), vocabularies kept."""
    from recforge.data import Interactions

    lengths = np.fromiter((s.size for s in sequences), dtype=np.int64, count=len(sequences))
    users = np.repeat(np.arange(len(sequences), dtype=np.int64), lengths)
    items = np.concatenate(sequences).astype(np.int64)
    times = np.arange(items.size, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return Interactions(users, items, None, times, user_ids=user_ids, item_ids=item_ids)


def cold_row_variants(model, train_data, cold: np.ndarray, args):
    """(name, item table used for scoring) of the trained model: as trained; for the text init,
    the cold items' rows put back to their initial text rows (as if never updated); and, for any
    init, the cold rows mapped from the raw text vectors by ridge regression (lambda = RIDGE,
    intercept) fitted from the text vectors of the warm items to their trained rows."""
    from recforge.models.sequential import text_init
    from recforge.models.training_data import TrainingData

    trained = model.item_factors_
    yield "as trained", trained
    texts = text_init.item_texts_for_init(TrainingData.of(train_data), model.item_text_fields, "SASRec")
    if model.item_init == "text":
        table = trained.copy()
        table[cold] = text_init.text_item_table(texts, model.hidden, args.encoder)[cold]
        yield "cold rows = their initial text rows", table
    X = np.asarray(text_init.encode_texts(texts, args.encoder), dtype=np.float64)
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    warm = ~cold
    W = np.linalg.solve(A[warm].T @ A[warm] + RIDGE * np.eye(A.shape[1]), A[warm].T @ trained[warm])
    table = trained.copy()
    table[cold] = (A[cold] @ W).astype(np.float32)
    yield f"cold rows = ridge map text -> trained rows (lambda {RIDGE})", table


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import recforge.datasets
    from recforge.evaluation.leave_one_out import full_ranks, leave_one_out
    from recforge.models.sequential import SASRec

    start = time.perf_counter()
    out = open(args.log, "a") if args.log else sys.stdout

    def emit(record):
        record.update(wall_s=round(time.perf_counter() - start, 1), load1=round(os.getloadavg()[0], 2),
                      dataset=args.dataset)
        out.write(json.dumps(record) + "\n")
        out.flush()

    inter = recforge.datasets.movielens(args.dataset, data_dir=args.data_dir)
    split = leave_one_out(inter)
    held = held_out_items(split.n_items, args.holdout_items, args.seed)
    train_seqs = [s[~np.isin(s, held)] for s in split.train_sequences()]
    train_data = sequences_as_interactions(train_seqs, inter.user_ids, inter.item_ids)
    train_data.item_metadata = inter.item_metadata
    valid_users = split.users("valid")
    valid_users = valid_users[~np.isin(split.targets("valid", valid_users), held)]
    validation = ([train_seqs[u] for u in valid_users], split.targets("valid", valid_users))
    train_counts = np.bincount(np.concatenate(train_seqs), minlength=split.n_items)
    emit({"event": "start", "args": vars(args), "users": split.n_users, "items": split.n_items,
          "items_held_out": int(held.size), "items_never_in_training": int((train_counts == 0).sum())})

    for init in args.inits.split(","):
        t0 = time.perf_counter()
        model = SASRec(hidden=args.hidden, blocks=args.blocks, heads=args.heads, dropout=args.dropout,
                       max_len=args.max_len, loss=args.loss, batch_size=args.batch_size, lr=args.lr,
                       epochs=args.chunk, early_stopping_patience=args.patience, seed=args.seed,
                       num_threads=args.threads, device="cpu", checkpoint_dir=tempfile.mkdtemp(prefix="text-init-"),
                       item_init=init, item_encoder=args.encoder, item_text_fields=tuple(args.fields.split(",")))
        state = {"epoch": 0}

        def on_validate(_, ndcg, init=init):
            state["epoch"] += 1
            emit({"event": "epoch", "init": init, "epoch": state["epoch"], "valid_ndcg@10": round(ndcg, 5)})

        epochs, chunk_s, budget = 0, 0.0, args.minutes * 60.0
        while epochs < args.epochs and time.perf_counter() - t0 + chunk_s < budget:
            t_chunk = time.perf_counter()
            epochs = min(args.epochs, epochs + args.chunk)
            model.epochs = epochs
            model.fit(train_data, validation=validation, on_validate=on_validate)
            chunk_s = time.perf_counter() - t_chunk
            if model.history_.get("stopped_early"):
                break
        train_s = time.perf_counter() - t0
        trained = model.item_factors_
        for variant, table in cold_row_variants(model, train_data, train_counts == 0, args):
            model.item_factors_ = table
            users, ranks = full_ranks(model, split, "test", "exclude", k=10)
            counts = train_counts[split.targets("test", users)]
            emit({"event": "result", "init": init, "variant": variant, "epochs_run": state["epoch"],
                  "best_epoch": model.best_epoch_, "stopped_early": bool(model.history_.get("stopped_early")),
                  "train_s": round(train_s, 1), "protocol": "leave-one-out full ranking (history excluded), test stage",
                  "metrics": slice_metrics(ranks, counts)})
        model.item_factors_ = trained


if __name__ == "__main__":
    main()
