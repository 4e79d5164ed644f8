"""PNG charts (matplotlib, ``pip install "recforge[plot]"``) for ``demo --out`` and ``bench --out``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from recforge.cli_commands.render import matplotlib_pyplot


def leaderboard_chart(rows: list[dict], path: Path, title: str) -> bool:
    """Grouped bars of NDCG@10, Recall@20 and Coverage@10 per model; False when matplotlib is missing."""
    plt = matplotlib_pyplot("the leaderboard chart (leaderboard.png)")
    if plt is None:
        return False
    metrics = [("ndcg@10", "NDCG@10"), ("recall@20", "Recall@20"), ("coverage@10", "Coverage@10")]
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(rows) + 2), 4.5))
    for j, (key, label) in enumerate(metrics):
        ax.bar(x + (j - 1) * width, [r[key] for r in rows], width, label=label)
    ax.set_xticks(x, [r["model"] for r in rows])
    ax.set_ylabel("value (higher is better)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def bench_chart(rows: list[dict], path: Path, title: str) -> bool:
    """One panel per kernel: horizontal bars of median seconds (log scale) with min-max whiskers."""
    plt = matplotlib_pyplot("the benchmark chart (bench.png)")
    if plt is None:
        return False
    timed = [r for r in rows if r.get("median_s") is not None]
    kernels = list(dict.fromkeys(r["kernel"] for r in timed))
    if not kernels:
        return False
    fig, axes = plt.subplots(len(kernels), 1, figsize=(9, 1.2 + 0.45 * max(
        sum(r["kernel"] == k for r in timed) for k in kernels) * len(kernels)), squeeze=False)
    for ax, kernel in zip(axes[:, 0], kernels):
        part = [r for r in timed if r["kernel"] == kernel]
        labels = [f"{r['implementation']} ({r['backend']}"
                  + (f", {r['threads']} thr)" if r["threads"] else ")") for r in part]
        med = np.array([r["median_s"] for r in part])
        lo = med - np.array([r["min_s"] for r in part])
        hi = np.array([r["max_s"] for r in part]) - med
        colors = ["tab:blue" if r["implementation"].startswith("recforge") else "tab:gray" for r in part]
        y = np.arange(len(part))
        ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=3)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("median seconds (log scale; whiskers: min-max)")
        ax.set_title(kernel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
