"""The leave-one-out table of issue 15: baselines on the S3-Rec Amazon files, and the SASRec /
BERT4Rec runs of bench_sasrec_beauty.py beside them and the published figures.

    OMP_NUM_THREADS=2 python benchmarks/bench_sequential_table.py \
        --runs ../sasrec-beauty-bce.jsonl ../sasrec-beauty-ce.jsonl --out ../sequential-table.md

Baselines (fitted on the training sequences, asked with the stage's history, as the sequence
models are): MostPopular, and ItemKNN (cosine) with k chosen on the validation stage (full
ranking, history excluded, NDCG@10) from ``--knn-k``. Every model is reported under the three
protocols of ``recforge.evaluation.leave_one_out``: full ranking with the history excluded
(recforge's convention), full ranking with the history scored 0 (S3-Rec/ICLRec's released code),
and 99 negatives fixed per user (uniform over items outside the user's sequence, seed 12345).

A run log contributes its last ``test`` line (the best validation epoch's weights within the
run's budget), its arguments, epochs and wall time. The table is written as Markdown (``--out``)
and every row as a JSON line to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

DATASETS = ("Beauty", "Sports_and_Outdoors", "Toys_and_Games")
FULL_EXCLUDE = "leave-one-out full ranking (history excluded)"
FULL_ZERO = "leave-one-out full ranking (history scored 0)"
SAMPLED = "leave-one-out sampled (99 fixed negatives per user, given)"
PUBLISHED = [  # (dataset, model, protocol label, HR@10, NDCG@10): issue 15, on these exact files
    ("Beauty", "SASRec (BCE, 1 negative), published", SAMPLED, 0.4696, 0.3156),
    ("Beauty", "SASRec (BCE, 1 negative), published", FULL_ZERO, 0.0605, 0.0318),
    ("Beauty", "ICLRec released model, published", FULL_ZERO, 0.0744, 0.0403),
    ("Beauty", "SASRec many sampled negatives, published", "leave-one-out full ranking", 0.0921, 0.0531),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--data-dir", default=os.environ.get("RECFORGE_DATA_DIR", "/work/shared/data"))
    p.add_argument("--knn-k", default="20,50,100,200", help="ItemKNN neighbourhood sizes tried on validation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", nargs="*", default=[], help="bench_sasrec_beauty.py JSON-lines logs")
    p.add_argument("--skip-baselines", action="store_true")
    p.add_argument("--out", default=None, help="Markdown table")
    return p.parse_args(argv)


def baseline_rows(dataset: str, args) -> list[dict]:
    import recforge.datasets
    from recforge.evaluation.leave_one_out import evaluate_leave_one_out, fixed_negatives, leave_one_out
    from recforge.models import ItemKNN, MostPopular

    inter = recforge.datasets.amazon(dataset, data_dir=args.data_dir, attributes=False)
    split = leave_one_out(inter)
    train = split.train_interactions(inter.user_ids, inter.item_ids)
    negatives = fixed_negatives(split.sequences, split.n_items, 99, 12345)
    rows = []

    def report(name, model, fit_s, extra):
        t0 = time.perf_counter()
        result = evaluate_leave_one_out(model, split, stage="test", ks=(10,), seen=("exclude", "zero"),
                                        negatives=negatives)
        eval_s = time.perf_counter() - t0
        for protocol in {r["protocol"] for r in result}:
            values = {r["metric"]: r["value"] for r in result if r["protocol"] == protocol}
            rows.append({"dataset": dataset, "model": name, "protocol": protocol, "hr@10": values["hit_rate@10"],
                         "ndcg@10": values["ndcg@10"], "fit_s": round(fit_s, 1), "eval_s": round(eval_s, 1),
                         "users": split.n_users, "items": split.n_items, **extra})

    t0 = time.perf_counter()
    popular = MostPopular().fit(train)
    report("MostPopular", popular, time.perf_counter() - t0, {})

    best = None
    for k in (int(x) for x in args.knn_k.split(",")):
        t0 = time.perf_counter()
        knn = ItemKNN(k=k, num_threads=args.threads, progress=False).fit(train)
        fit_s = time.perf_counter() - t0
        valid = evaluate_leave_one_out(knn, split, stage="valid", ks=(10,), protocols=("full",))
        ndcg = next(r["value"] for r in valid if r["metric"] == "ndcg@10")
        print(json.dumps({"dataset": dataset, "tuning": "ItemKNN", "k": k, "valid_ndcg@10": round(ndcg, 5)}),
              flush=True)
        if best is None or ndcg > best[0]:
            best = (ndcg, k, knn, fit_s)
    _, k, knn, fit_s = best
    report(f"ItemKNN (cosine, k={k} by validation)", knn, fit_s, {"k": k})
    return rows


def run_rows(path: str) -> list[dict]:
    """The last test evaluation of a bench_sasrec_beauty.py log, one row per protocol."""
    start, test, epochs = None, None, 0
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record["event"] == "start":
                start = record
            elif record["event"] == "test":
                test = record
            elif record["event"] == "epoch":
                epochs = record["epoch"]
    if start is None or test is None:
        raise ValueError(f"{path}: no start or test record")
    a = start["args"]
    name = (f"{a['model']} ({a['loss']}" + (f", {a['n_negatives']} neg" if a["loss"] != "ce" else "")
            + f", d={a['hidden']}, dropout {a['dropout']}, lr {a['lr']})")
    rows = []
    for protocol in (FULL_EXCLUDE, FULL_ZERO, SAMPLED):
        hr, ndcg = test.get(f"{protocol} | hit_rate@10"), test.get(f"{protocol} | ndcg@10")
        if hr is not None:
            rows.append({"dataset": a["dataset"], "model": name, "protocol": protocol, "hr@10": hr, "ndcg@10": ndcg,
                         "best_epoch": test["best_epoch"], "epochs": epochs,
                         "minutes": round(test["wall_s"] / 60, 1), "threads": a["threads"], "log": path})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | model | protocol | HR@10 | NDCG@10 | notes |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        notes = []
        if "best_epoch" in r:
            notes.append(f"best epoch {r['best_epoch']} of {r['epochs']}, {r['minutes']} min on {r['threads']} threads")
        if "fit_s" in r:
            notes.append(f"fit {r['fit_s']} s, evaluation {r['eval_s']} s")
        if r.get("published"):
            notes.append("published")
        protocol = r["protocol"].replace("leave-one-out ", "")
        lines.append(f"| {r['dataset']} | {r['model']} | {protocol} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | "
                     f"{'; '.join(notes)} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    rows = []
    for path in args.runs:
        rows += run_rows(path)
    if not args.skip_baselines:
        for dataset in args.datasets.split(","):
            rows += baseline_rows(dataset, args)
    rows += [{"dataset": d, "model": m, "protocol": p, "hr@10": hr, "ndcg@10": nd, "published": True}
             for d, m, p, hr, nd in PUBLISHED]
    rows.sort(key=lambda r: (DATASETS.index(r["dataset"]) if r["dataset"] in DATASETS else 9, r["protocol"],
                             -r["ndcg@10"]))
    for r in rows:
        print(json.dumps(r), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(markdown(rows))


if __name__ == "__main__":
    sys.exit(main())
