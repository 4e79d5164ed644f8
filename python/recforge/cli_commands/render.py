"""Rich tables and files (CSV, JSON) for the CLI's results."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from recforge.cli_commands.console import note


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def plain(text: Any) -> str:
    """``text`` with rich markup escaped (titles such as "[REC] (2007)" print as they are)."""
    from rich.markup import escape

    return escape(str(text))


def leaderboard_table(scores, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (("#", "right"), ("model", "left"), ("NDCG@10", "right"), ("Recall@20", "right"),
                          ("Coverage@10", "right"), ("fit", "right"), ("recommend", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for rank, s in enumerate(scores, 1):
        m = s.metrics
        table.add_row(str(rank), plain(s.model), fmt(m["ndcg@10"]), fmt(m["recall@20"]), fmt(m["coverage@10"]),
                      seconds(s.fit_s), seconds(s.recommend_s))
    return table


def examples_table(examples: list[dict], model: str):
    from rich.table import Table

    table = Table(title=f"Example recommendations ({plain(model)}; * = an item the user really chose in test)",
                  title_justify="left", show_lines=True)
    table.add_column("user", no_wrap=True)
    table.add_column("liked in train (top rated)")
    table.add_column(f"top {len(examples[0]['recommendations']) if examples else 0} recommended")
    for ex in examples:
        recs = "\n".join(f"{i}. {plain(r['item'])}{' *' if r['held_out'] else ''}"
                         for i, r in enumerate(ex["recommendations"], 1))
        table.add_row(f"{ex['user']}\n({ex['n_train']} train items)", "\n".join(plain(h) for h in ex["history"]), recs)
    return table


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write_csv(path: Path, rows: list[dict], columns: Iterable[str]) -> None:
    import csv

    columns = list(columns)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def matplotlib_pyplot(purpose: str):
    """pyplot with a file-only backend, or None after saying which extra to install."""
    try:
        import matplotlib
    except ImportError:
        note(f'{purpose} skipped: it needs matplotlib: pip install "recforge[plot]"')
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
