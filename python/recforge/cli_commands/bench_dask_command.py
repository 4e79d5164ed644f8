"""``recforge bench --backend dask``: recforge.distributed against the single-process kernel, per
cluster layout (:mod:`recforge.bench.distributed`), as a table (and with ``--out``, bench-dask.json)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from recforge.cli_commands.console import stdout_console
from recforge.cli_commands.errors import UserError
from recforge.cli_commands.render import plain, write_json


def bench_dask(size: str, dataset: str | None, threads: str | None, layouts: str | None, rounds: int,
               retain_memory: bool, out: Path | None, data_dir: Any, download: bool, progress: bool) -> None:
    from recforge.bench.distributed import item_matrix, parse_layouts, run_distributed_benchmark
    from recforge.cli_commands.bench_command import bench_inputs, parse_threads
    from recforge.distributed.cluster import require_dask

    start = time.perf_counter()
    try:
        require_dask()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    counts = parse_threads(threads) or [os.cpu_count() or 1]
    if len(counts) != 1:
        raise UserError(f"--threads with --backend dask is one count (the single-process kernel's), got {threads!r}")
    total = counts[0]
    try:
        wanted = parse_layouts(layouts) if layouts is not None else sorted({(1, total), (total, 1)})
    except ValueError as exc:
        raise UserError(f"--layouts: {exc}") from None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    console = stdout_console()
    inputs = bench_inputs(size, dataset, data_dir, download)
    X = item_matrix(inputs.R)

    def on_round(row: dict, one: dict) -> None:
        if progress:
            console.print(f"{row['layout']} round {len(row['rounds'])}/{rounds}: ratio {one['ratio']:.3f}",
                          highlight=False, markup=False)

    report = run_distributed_benchmark(X, wanted, rounds, total, retain_memory, on_round)
    report["inputs"] = inputs.label
    report["elapsed_s"] = time.perf_counter() - start
    print_dask_report(console, report)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "bench-dask.json", report)
        console.print(f"wrote {out / 'bench-dask.json'}", highlight=False, markup=False)
    console.print(f"bench finished in {report['elapsed_s']:.1f} s", highlight=False, markup=False)


def print_dask_report(console, report: dict) -> None:
    import numpy as np
    from rich.table import Table

    m = report["matrix"]
    console.print(f"inputs: {report['inputs']}: item-item cosine, k={report['k']}, X {m['rows']} x {m['cols']} "
                  f"({m['nnz']} entries); single process: {report['threads']} thread(s); workers' memory: "
                  f"{report['memory']}", highlight=False, markup=False)
    console.print(f"each ratio: distributed / single-process wall time, median of {report['rounds']} alternated "
                  f"rounds (CPU: their CPU seconds, this process and the workers)", highlight=False, markup=False)
    table = Table(title="recforge.distributed.similarity_topk", title_justify="left")
    for col, justify in (("layout", "left"), ("path", "left"), ("tasks", "right"), ("MB per worker", "right"),
                         ("single", "right"), ("distributed", "right"), ("ratio", "right"), ("CPU ratio", "right"),
                         ("agrees", "left")):
        table.add_column(col, justify=justify, no_wrap=True)
    for row in report["layouts"]:
        timed = bool(row["rounds"])
        single = np.median([r["single_s"] for r in row["rounds"]]) if timed else None
        dist = np.median([r["distributed_s"] for r in row["rounds"]]) if timed else None
        table.add_row(row["layout"], plain(row["path"]), str(row["tasks"]),
                      f"{row['scattered_bytes_per_worker'] / 1e6:.1f}",
                      f"{single:.3f} s" if timed else "-", f"{dist:.3f} s" if timed else "-",
                      f"{row['median_ratio']:.3f}x" if timed else "-",
                      f"{row['median_cpu_ratio']:.3f}x" if timed else "-", row["agrees"])
    console.print(table)
