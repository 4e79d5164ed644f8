"""LightGCN on the Gowalla split of the LightGCN paper: recall@20 / ndcg@20 against wall-clock time.

Trains ``recforge.models.LightGCN`` (dim 64, 3 layers, reg 1e-4) for a fixed wall-clock budget;
after every ``--every`` epochs it evaluates full ranking with the train items masked (the paper's
recall@20 and ndcg@20) and appends a JSON line (epoch, wall seconds, training seconds, metrics,
the epoch's section times, load) to ``--log``. Epochs continue one fit to the next through the
model's safetensors checkpoint (the shared training loop's resume), so the run is one training.
``--plot`` draws recall@20 and ndcg@20 against wall-clock minutes from such a log (matplotlib).

    OMP_WAIT_POLICY=passive python benchmarks/bench_lightgcn_gowalla.py --threads 2 --minutes 60 \
        --lr 0.02 --lr-steps 40:0.002,90:0.0005 --batch-size 16384 --log gowalla.jsonl

``--lr-steps E:LR,...`` is a step schedule: from epoch E + 1 on the learning rate is LR (the
resumed fit takes the new rate; Adam's moments carry over).
    python benchmarks/bench_lightgcn_gowalla.py --plot gowalla.jsonl --png gowalla.png
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from harness import data_root

PAPER = {"recall@20": 0.1830, "ndcg@20": 0.1554}


def train(args) -> None:
    import recforge
    from recforge.models import LightGCN

    start = time.time()
    train_data, test = recforge.datasets.lightgcn("gowalla", data_dir=data_root())
    trained = 0.0
    with tempfile.TemporaryDirectory() as checkpoints, open(args.log, "a") as log:
        epoch = 0
        while time.time() - start < args.minutes * 60:
            epoch += args.every
            lr = lr_at(epoch, args.lr, args.lr_steps)
            model = LightGCN(dim=64, layers=3, lr=lr, reg=1e-4, batch_size=args.batch_size, epochs=epoch,
                             sampling=args.sampling, device=args.device, num_threads=args.threads, seed=args.seed,
                             checkpoint_dir=checkpoints)
            t0 = time.perf_counter()
            model.fit(train_data)
            trained += time.perf_counter() - t0
            t1 = time.perf_counter()
            table = recforge.evaluate(model, train_data, test, metrics=list(PAPER), batch_size=4096)
            record = dict(epoch=epoch, wall=time.time() - start, train_seconds=trained,
                          eval_seconds=time.perf_counter() - t1, load=os.getloadavg()[0], lr=lr,
                          batch_size=args.batch_size, sampling=args.sampling,
                          sections={k: round(v, 2) for k, v in model.train_history_.records[-1].sections.items()},
                          **{m.replace("@", ""): float(table.loc[m, "value"]) for m in PAPER})
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(json.dumps(record), flush=True)


def lr_at(epoch: int, base: float, steps: str | None) -> float:
    """The learning rate of ``epoch`` (1-based) under the step schedule "E:LR,E2:LR2"."""
    lr = base
    for part in filter(None, (steps or "").split(",")):
        after, value = part.split(":")
        if epoch > int(after):
            lr = float(value)
    return lr


def plot(logs: list[str], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path in logs:
        rows = [json.loads(line) for line in open(path) if line.strip()]
        if not rows:
            continue
        lrs = sorted({r.get("lr") for r in rows}, reverse=True)
        label = f"lr {' -> '.join(map(str, lrs))}, batch {rows[0].get('batch_size')}, {rows[0].get('sampling', 'user')} sampling"
        minutes = [r["wall"] / 60 for r in rows]
        for ax, key in zip(axes, ("recall20", "ndcg20")):
            ax.plot(minutes, [r[key] for r in rows], marker="o", label=label)
    axes[0].axhline(0.17, color="red", linestyle=":", label="target 0.17")
    for ax, (name, value) in zip(axes, PAPER.items()):
        ax.axhline(value, color="grey", linestyle="--", label=f"paper {name} {value} (GPU, ~1000 epochs)")
        ax.set_xlabel("wall-clock minutes (2 CPU threads, shared machine)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("LightGCN on Gowalla (recforge, CPU)")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--lr-steps", default=None, help="step schedule E:LR,... (lr LR after epoch E)")
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--sampling", default="user", choices=["user", "interaction"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=1, help="epochs between evaluations")
    parser.add_argument("--log", default="lightgcn-gowalla.jsonl")
    parser.add_argument("--plot", nargs="+", help="draw these logs instead of training")
    parser.add_argument("--png", default="lightgcn-gowalla.png")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, args.png)
    else:
        train(args)


if __name__ == "__main__":
    main()
