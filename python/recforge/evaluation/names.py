"""Metric names as users write them ("ndcg@10", "recall@20", "auc", "rmse") and what they mean."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

# kind: "ranking" (per user, from top-k lists and held-out items), "list" (per user, from the
# lists alone), "catalogue" (over all lists together), "auc" (scores of positives vs negatives),
# "rating" (model.predict against held-out values)
KINDS = {
    "precision": "ranking", "recall": "ranking", "f1": "ranking", "hit_rate": "ranking",
    "ndcg": "ranking", "map": "ranking", "mrr": "ranking",
    "novelty": "list", "average_popularity": "list", "diversity": "list",
    "coverage": "catalogue", "gini": "catalogue",
    "auc": "auc", "rmse": "rating", "mae": "rating",
}
ALIASES = {"hr": "hit_rate", "hit": "hit_rate", "hitrate": "hit_rate", "hit_ratio": "hit_rate",
           "arp": "average_popularity", "avg_pop": "average_popularity", "popularity": "average_popularity",
           "ild": "diversity", "prec": "precision"}
NEEDS_K = {name for name, kind in KINDS.items() if kind in ("ranking", "list", "catalogue")}


def valid_names() -> str:
    with_k = ", ".join(f"{n}@k" for n in KINDS if n in NEEDS_K)
    without = ", ".join(n for n in KINDS if n not in NEEDS_K)
    return f"{with_k}; {without} (aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())})"


@dataclass(frozen=True)
class MetricSpec:
    name: str       # canonical base name, e.g. "ndcg"
    k: int | None   # cut-off, None for auc/rmse/mae

    @property
    def kind(self) -> str:
        return KINDS[self.name]

    @property
    def label(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"


def parse_metric(text: object) -> MetricSpec:
    """'NDCG@10' -> MetricSpec('ndcg', 10); unknown names raise ValueError listing the valid ones."""
    if not isinstance(text, str):
        raise TypeError(f"metric names must be strings like 'ndcg@10', got {type(text).__name__}")
    base, sep, cut = text.strip().lower().partition("@")
    base = ALIASES.get(base, base)
    if base not in KINDS:
        raise ValueError(f"unknown metric {text!r}; valid metrics: {valid_names()}")
    if base not in NEEDS_K:
        if sep:
            raise ValueError(f"metric {base!r} takes no cut-off, got {text!r}")
        return MetricSpec(base, None)
    if not sep:
        raise ValueError(f"metric {text!r} needs a cut-off, e.g. '{base}@10'")
    if not cut.isdigit() or int(cut) <= 0:
        raise ValueError(f"metric {text!r}: the cut-off k must be an integer >= 1")
    return MetricSpec(base, int(cut))


def parse_metrics(metrics: str | Iterable[str]) -> list[MetricSpec]:
    """A list of distinct specs in the order given (a single string is one metric)."""
    if isinstance(metrics, str):
        metrics = [metrics]
    specs: list[MetricSpec] = []
    for text in metrics:
        spec = parse_metric(text)
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise ValueError(f"metrics is empty; valid metrics: {valid_names()}")
    return specs


def lower_is_better(label: str) -> bool:
    """True for error metrics (rmse, mae) and popularity/concentration (average_popularity, gini)."""
    return parse_metric(label).name in ("rmse", "mae", "average_popularity", "gini")
