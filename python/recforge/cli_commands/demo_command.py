"""``recforge demo``: print (and with ``--out`` write) the leaderboard and example recommendations."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recforge.cli_commands.console import stdout_console
from recforge.cli_commands.demo import METRICS, example_users, explain_example, run_demo
from recforge.cli_commands.errors import UserError
from recforge.cli_commands.render import examples_table, plain, leaderboard_table, seconds, write_csv, write_json

CSV_COLUMNS = ["rank", "model", *METRICS, "fit_s", "recommend_s", "evaluate_s"]


def demo(dataset: str, models: str | None, out: Path | None, split: str, seed: int, data_dir: Any,
         download: bool, progress: bool) -> None:
    start = time.perf_counter()
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    data, scores, skipped = run_demo(dataset, models, split=split, seed=seed, data_dir=data_dir,
                                     download=download, progress=progress)
    if not scores:
        raise UserError("no model could be trained: " + "; ".join(f"{n}: {why}" for n, why in skipped))
    console = stdout_console()
    for line in data.protocol:
        console.print(f"[dim]{plain(line)}[/dim]", highlight=False)
    console.print(leaderboard_table(scores, f"Leaderboard on {data.dataset} (full ranking, sorted by NDCG@10)"))
    best = scores[0]
    console.print(examples_table(example_users(data, best, seed=seed), best.model))
    why = explain_example(data, scores, seed=seed)
    if why is not None:
        console.print(plain(explanation_line(why)), highlight=False)
    for name, why in skipped:
        console.print(f"skipped {name}: {why}", highlight=False, markup=False)
    if out is not None:
        written = write_outputs(out, data, scores, skipped)
        console.print("wrote " + ", ".join(str(p) for p in written), highlight=False, markup=False)
    console.print(f"demo finished in {seconds(time.perf_counter() - start)}", highlight=False, markup=False)


def explanation_line(why: dict) -> str:
    """One sentence: the score, what it sums (the components of a hybrid, else the history
    items, neighbour users and words), each with its contribution."""
    head = f"Why {why['model']} recommends {why['item']!r} to user {why['user']} (score {why['score']:.4f}, "
    if why["components"]:
        parts = [f"{c['model']} {c['contribution']:+.4f}" + (f" [{_reasons_text(c)}]" if _reasons_text(c) else "")
                 for c in why["components"]]
        return head + "the sum of its components' terms): " + "; ".join(parts)
    return head + "the sum of every contribution): " + _reasons_text(why)


def _reasons_text(why: dict) -> str:
    out = []
    if why["items"]:
        out.append("liked " + "; ".join(f"{t} ({c:+.4f})" for t, c in why["items"]))
    if why["users"]:
        out.append("similar users " + ", ".join(f"{u} ({c:+.4f})" for u, c in why["users"]))
    if why["words"]:
        out.append("words " + ", ".join(f"{w} ({c:+.4f})" for w, c in why["words"]))
    return "; ".join(out)


def write_outputs(out: Path, data, scores, skipped) -> list[Path]:
    from recforge.cli_commands.charts import leaderboard_chart

    out.mkdir(parents=True, exist_ok=True)
    rows = [{"rank": rank, **s.row()} for rank, s in enumerate(scores, 1)]
    write_csv(out / "leaderboard.csv", rows, CSV_COLUMNS)
    write_json(out / "leaderboard.json", {
        "dataset": data.dataset, "protocol": data.protocol, "metrics": list(METRICS),
        "leaderboard": [{**row, "params": s.params} for row, s in zip(rows, scores)],
        "skipped": [{"model": n, "reason": why} for n, why in skipped]})
    written = [out / "leaderboard.csv", out / "leaderboard.json"]
    if leaderboard_chart(rows, out / "leaderboard.png", f"recforge demo on {data.dataset} (full ranking)"):
        written.append(out / "leaderboard.png")
    return written
