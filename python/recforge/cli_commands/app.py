"""The typer application behind ``recforge`` (needs ``pip install "recforge[cli]"``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from recforge.cli_commands.errors import UserError, report_user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="recforge: recommender systems with a C++/OpenMP and CUDA core. "
                       "Mistakes print one line; RECFORGE_DEBUG=1 shows the traceback instead.")

DATASET_HELP = ("ml-latest-small (bundled), ml-100k, ml-1m, beauty, sports, toys, gowalla, yelp2018, amazon-book, "
                "goodbooks; files are read from --data-dir, else $RECFORGE_DATA_DIR, else ~/.recforge/data")
DataDir = typer.Option(None, "--data-dir", help="folder holding the datasets (default: $RECFORGE_DATA_DIR)")
NoDownload = typer.Option(False, "--no-download", help="never download a missing dataset; fail instead")
NoProgress = typer.Option(False, "--no-progress", help="hide progress bars")


@app.command("info")
def info_command() -> None:
    """Version, build, backends (CPU threads and features, CUDA devices or why none) and optional libraries."""
    from recforge.cli_commands.info import info_text

    print(info_text())


@app.command("demo")
@report_user_errors
def demo_command(
    dataset: str = typer.Option("ml-latest-small", "--dataset", "-d", help=DATASET_HELP),
    models: Optional[str] = typer.Option(None, "--models", "-m",
                                         help="comma-separated subset of the registered models (default: all)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write leaderboard.csv/.json and leaderboard.png here"),
    split: str = typer.Option("random", "--split", help="random (20% of each user's items, seeded) or leave-last-out"),
    seed: int = typer.Option(0, "--seed", help="seed of the split and of the example users"),
    data_dir: Optional[Path] = DataDir,
    no_download: bool = NoDownload,
    no_progress: bool = NoProgress,
) -> None:
    """Train every registered model on a dataset, evaluate with full ranking, print a leaderboard."""
    from recforge.cli_commands.demo_command import demo

    demo(dataset, models, out, split, seed, data_dir, not no_download, not no_progress)


@app.command("evaluate")
@report_user_errors
def evaluate_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    model: str = typer.Option(..., "--model", "-m", help="a registered model name (see `recforge evaluate --help`)"),
    protocol: str = typer.Option("full", "--protocol", "-p", help="full (rank every item) or sampled (negatives)"),
    k: str = typer.Option("10,20", "--k", help="comma-separated cut-offs for the ranking metrics"),
    negatives: int = typer.Option(100, "--negatives", min=1, help="negatives per user (sampled protocol)"),
    split: str = typer.Option("random", "--split", help="random (20% of each user's items, seeded) or leave-last-out"),
    seed: int = typer.Option(0, "--seed", help="seed of the split and of negative sampling"),
    data_dir: Optional[Path] = DataDir,
    no_download: bool = NoDownload,
    no_progress: bool = NoProgress,
) -> None:
    """Fit one model on one dataset and print its metrics."""
    from recforge.cli_commands.evaluate_command import evaluate_one

    evaluate_one(dataset, model, protocol, k, negatives, split, seed, data_dir, not no_download, not no_progress)


@app.command("bench")
@report_user_errors
def bench_command(
    size: str = typer.Option("small", "--size", "-s", help="synthetic input size: small, medium or large"),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d",
                                          help="benchmark on a dataset's interactions instead of synthetic data"),
    kernels: Optional[str] = typer.Option(None, "--kernels", help="comma-separated subset of the kernels"),
    threads: Optional[str] = typer.Option(None, "--threads",
                                          help="comma-separated CPU thread counts (default: 1, 2, 4, ... cores)"),
    repeat: int = typer.Option(5, "--repeat", min=1, help="timed repetitions per measurement"),
    warmup: int = typer.Option(1, "--warmup", min=0, help="untimed runs before the timed ones"),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="also time installed peer libraries"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write bench.json and bench.png here"),
    backend: str = typer.Option("local", "--backend",
                                help="local: the kernels on this machine, against peers; dask: recforge.distributed "
                                     "on Dask LocalClusters against the single-process kernel"),
    layouts: Optional[str] = typer.Option(None, "--layouts",
                                          help="--backend dask: WORKERSxTHREADS, comma-separated "
                                               "(default: 1xT,Tx1, T = --threads or the cores)"),
    retain_memory: bool = typer.Option(False, "--retain-memory",
                                       help="--backend dask: workers keep the memory they free "
                                            "(recforge.distributed.cluster.retained_memory)"),
    data_dir: Optional[Path] = DataDir,
    no_download: bool = NoDownload,
    no_progress: bool = NoProgress,
) -> None:
    """Benchmark the kernels on every backend and thread count, against peer libraries, in one process
    (--backend dask: the distributed kernels' overhead and scaling, --repeat rounds per layout)."""
    if backend == "dask":
        if kernels is not None:
            raise UserError("--kernels does not apply to --backend dask (it times similarity_topk)")
        from recforge.cli_commands.bench_dask_command import bench_dask

        bench_dask(size, dataset, threads, layouts, repeat, retain_memory, out, data_dir, not no_download,
                   not no_progress)
        return
    if backend != "local":
        raise UserError(f"unknown --backend {backend!r}; choose local or dask")
    if layouts is not None or retain_memory:
        raise UserError("--layouts and --retain-memory go with --backend dask")
    from recforge.cli_commands.bench_command import bench

    bench(size, dataset, kernels, threads, repeat, warmup, peers, out, data_dir, not no_download, not no_progress)


@app.command("serve")
@report_user_errors
def serve_command(
    path: Path = typer.Argument(..., help="the model folder (written by recforge.serving.save_artifact)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port"),
    workers: int = typer.Option(0, "--workers", min=0, help="worker processes (0: one per core)"),
    events_url: Optional[str] = typer.Option(None, "--events-url",
                                             help="postgresql://user@host:port/db (default: a SQLite file "
                                                  "beside the model folder)"),
    max_n: int = typer.Option(1000, "--max-n", min=1, help="largest n a request may ask for"),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", min=1, help="largest request body"),
    partial_fit_events: int = typer.Option(1000, "--partial-fit-events", min=0,
                                           help="partial_fit after this many new events (0: never)"),
    partial_fit_seconds: float = typer.Option(60.0, "--partial-fit-seconds", min=0.0,
                                              help="... or this long after the first new event (0: never)"),
    reload_poll_seconds: float = typer.Option(1.0, "--reload-poll-seconds", min=0.0,
                                              help="how often to look for a new artifact version (0: never)"),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level"),
    imports: Optional[list[str]] = typer.Option(None, "--import",
                                                help="a module to import first, which registers a custom "
                                                     "model class (repeatable)"),
) -> None:
    """Serve a saved model over HTTP: recommendations, similar items, events, /metrics, /docs."""
    from recforge.cli_commands.serve_command import serve

    serve(path, host, port, workers, events_url, max_n, max_body_bytes, partial_fit_events,
          partial_fit_seconds, reload_poll_seconds, log_level, tuple(imports or ()))


def run(argv: list[str]) -> int:
    """Run the app on ``argv`` and return its exit status."""
    try:
        app(args=argv, prog_name="recforge", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0
