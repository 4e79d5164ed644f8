"""``recforge bench``: the kernel benchmark as a table (and with ``--out``, bench.json + bench.png)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recforge.cli_commands.console import stdout_console
from recforge.cli_commands.errors import UserError
from recforge.cli_commands.render import plain, write_json


def parse_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"--{what} is empty")
    return parts


def parse_threads(text: str | None) -> list[int] | None:
    parts = parse_list(text, "threads")
    if parts is None:
        return None
    try:
        counts = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--threads must be comma-separated positive integers, got {text!r}") from None
    if min(counts) < 1:
        raise UserError(f"--threads must be comma-separated positive integers, got {text!r}")
    return counts


def bench_inputs(size: str, dataset: str | None, data_dir: Any, download: bool):
    from recforge.bench import SIZES, from_matrix, synthetic

    if dataset is not None:
        from recforge.cli_commands.datasets import load_dataset

        name, loaded = load_dataset(dataset, data_dir, download)
        inter = loaded[0] if isinstance(loaded, tuple) else loaded   # pre-split data: its train part
        return from_matrix(inter.to_csr(values=False), name)
    if size not in SIZES:
        raise UserError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    return synthetic(size)


def bench(size: str, dataset: str | None, kernels: str | None, threads: str | None, repeat: int, warmup: int,
          peers: bool, out: Path | None, data_dir: Any, download: bool, progress: bool) -> None:
    from tqdm.auto import tqdm

    from recforge.bench.cases import KERNELS
    from recforge.bench.runner import default_threads, measurement_count, run_benchmark

    start = time.perf_counter()
    wanted = parse_list(kernels, "kernels")
    for name in wanted or []:
        if name not in KERNELS:
            raise UserError(f"unknown kernel {name!r}; choose from {', '.join(KERNELS)}")
    counts = parse_threads(threads) or default_threads()
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    with tqdm(total=measurement_count(wanted, counts, peers) + 1, desc="bench", disable=not progress,
              leave=False, bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed}") as bar:
        bar.set_description_str("bench: preparing inputs")
        inputs = bench_inputs(size, dataset, data_dir, download)

        def tick(label: str) -> None:
            bar.update(1)
            bar.set_description_str(f"bench: {label}")

        report = run_benchmark(inputs, wanted, counts, repeat, warmup, peers, progress=tick)
    report["elapsed_s"] = time.perf_counter() - start
    console = stdout_console()
    print_report(console, report)
    if out is not None:
        from recforge.cli_commands.charts import bench_chart

        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "bench.json", report)
        written = [out / "bench.json"]
        if bench_chart(report["rows"], out / "bench.png", f"recforge bench: {report['inputs']}"):
            written.append(out / "bench.png")
        console.print("wrote " + ", ".join(str(p) for p in written), highlight=False, markup=False)
    console.print(f"bench finished in {time.perf_counter() - start:.1f} s", highlight=False, markup=False)


def print_report(console, report: dict) -> None:
    from rich.table import Table

    m = report["machine"]
    s = report["settings"]
    console.print(f"inputs: {report['inputs']}", highlight=False, markup=False)
    console.print(f"machine: copy bandwidth {m['copy']['gb_per_s']:.1f} GB/s ({m['copy']['what']}); "
                  f"GEMM {m['gemm']['gflop_per_s']:.1f} GFLOP/s ({m['gemm']['what']})", highlight=False, markup=False)
    console.print(f"each time: median of {s['repeat']} runs after {s['warmup']} warm-up run(s); spread = "
                  f"(max - min) / median; vs fastest peer = median / the fastest agreeing peer's median (below 1: "
                  f"faster than every peer); GFLOP/s = useful flops / median; GB/s = minimum bytes read and written "
                  f"/ median (formulas: recforge.bench.cases)", highlight=False, markup=False)
    if m.get("cuda_device"):
        d = m["cuda_device"]
        console.print(f"device {d['device']}: copy {d['copy_gb_per_s']:.0f} GB/s, GEMM {d['gemm_gflop_per_s']:.0f} "
                      f"GFLOP/s ({d['what']})", highlight=False, markup=False)
    if not m["cuda_usable"]:
        console.print(f"cuda: not usable here: {m['cuda_reason']}", highlight=False, markup=False)
    if report["missing_kernels"]:
        console.print("not benchmarked (not in this build of recforge.kernels): "
                      + ", ".join(report["missing_kernels"]), highlight=False, markup=False)
    for kernel in report["kernels"]:
        rows = [r for r in report["rows"] if r["kernel"] == kernel]
        table = Table(title=plain(f"{kernel}: {rows[0]['case']}" if rows else kernel), title_justify="left")
        for col, justify in (("implementation", "left"), ("backend", "left"), ("threads", "right"),
                             ("median", "right"), ("spread", "right"), ("vs fastest peer", "right"),
                             ("GFLOP/s", "right"), ("GB/s", "right"), ("agrees", "left")):
            table.add_column(col, justify=justify, no_wrap=True)
        table.add_column("note", overflow="fold", max_width=60)
        for r in rows:
            timed = r["median_s"] is not None
            ratio = r["ratio_to_fastest_peer"]
            table.add_row(
                plain(r["implementation"]), r["backend"], "-" if r["threads"] is None else str(r["threads"]),
                f"{r['median_s'] * 1e3:.2f} ms" if timed else "-",
                f"{r['spread'] * 100:.0f}%" if timed else "-",
                f"{ratio:.2f}x" if ratio is not None else "-",
                f"{r['gflop_per_s']:.1f}" if timed else "-", f"{r['gb_per_s']:.2f}" if timed else "-",
                r["agrees"] or "-", plain(table_note(r)))
        console.print(table)


def table_note(row: dict) -> str:
    """Why a row was not timed, or how a result disagreed (agreement details are in bench.json)."""
    if row["note"].startswith("CUDA not usable"):
        return "CUDA not usable (see above)"
    if row["agrees"] == "NO":
        return row.get("agreement", "")
    return row["note"]
