"""``recforge evaluate``: one model, one dataset, one protocol; prints the metrics table."""
from __future__ import annotations

from typing import Any

from recforge.cli_commands.console import Steps, stdout_console
from recforge.cli_commands.datasets import dataset_entry
from recforge.cli_commands.demo import FULL_RANKING_NOTE, fit_and_score, prepare
from recforge.cli_commands.errors import UserError
from recforge.cli_commands.modelzoo import resolve_models
from recforge.cli_commands.render import fmt, plain, seconds

FULL_METRICS = ("ndcg", "recall", "precision", "hit_rate", "map", "mrr", "coverage")
SAMPLED_METRICS = ("ndcg", "recall", "hit_rate", "mrr")


def cutoffs(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--k must be comma-separated positive integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise UserError(f"--k must be comma-separated positive integers, got {text!r}")
    return ks


def evaluate_one(dataset: str, model: str, protocol: str, k: str, negatives: int, split: str, seed: int,
                 data_dir: Any, download: bool, progress: bool) -> None:
    from rich.table import Table

    if protocol not in ("full", "sampled"):
        raise UserError(f"unknown protocol {protocol!r}; choose full or sampled")
    if "," in model:
        raise UserError("--model takes one model; use `recforge demo --models A,B` to compare several")
    name = resolve_models(model)[0]
    ks = cutoffs(k)
    dataset_entry(dataset)          # unknown names fail before any work starts
    names = FULL_METRICS if protocol == "full" else SAMPLED_METRICS
    metrics = [f"{m}@{kk}" for kk in ks for m in names]
    extra = {"n_negatives": negatives, "seed": seed} if protocol == "sampled" else {}
    if protocol == "sampled":
        metrics.append("auc")
    with Steps(4, "evaluate", progress) as steps:
        data = prepare(dataset, steps, split=split, seed=seed, data_dir=data_dir, download=download)
        data.protocol.append(FULL_RANKING_NOTE if protocol == "full" else
                             f"sampled ranking: each test user's held-out items against {negatives} items drawn "
                             f"from those in neither their train nor test set (seed {seed}); not comparable with "
                             f"full-ranking numbers")
        score = fit_and_score(name, data, steps, progress, demo=False, metrics=tuple(metrics), protocol=protocol,
                              **extra)
    console = stdout_console()
    for line in data.protocol:
        console.print(f"[dim]{plain(line)}[/dim]", highlight=False)
    label = "full ranking" if protocol == "full" else f"sampled, {negatives} negatives per user"
    table = Table(title=f"{name} on {data.dataset} ({label})", title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for metric in metrics:
        table.add_row(metric, fmt(score.metrics[metric]))
    table.add_row("fit time", seconds(score.fit_s))
    table.add_row("recommend time" if protocol == "full" else "scoring time",
                  seconds(score.recommend_s if protocol == "full" else score.evaluate_s))
    console.print(table)
    params = ", ".join(f"{k_}={v!r}" for k_, v in score.params.items() if k_ != "progress")
    console.print(plain(f"{name}({params})"), highlight=False)
