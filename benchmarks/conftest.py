"""pytest-benchmark plumbing shared by the suites in benchmarks/ (see benchmarks/README.md).

* ``bench_*.py`` files are collected as test modules (except the scripts in ``NOT_SUITES``).
* ``--bench-threads N`` (default 2): the thread count of recforge and every peer; BLAS pools are
  limited to it too (threadpoolctl) and OMP_NUM_THREADS is set when it was not.
* ``--bench-sizes a,b`` (default ``tiny,small,ml100k,gowalla``; ``all`` for every size) picks the
  ``size`` parameters a suite declares in its ``SIZES``.
* Inputs, kernel cases (recforge.bench.cases) and recforge's reference results are built once per
  session. Every timed case first checks its result against recforge's; the JSON output gains the
  case's flops/bytes, GFLOP/s and GB/s, and the load average at the end of the run.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

DEFAULT_SIZES = "tiny,small,ml100k,gowalla"
#: scripts, not suites: the GPU check's benchmark (no pytest-benchmark on a borrowed GPU machine) and
#: the responsible-recommendation quality curves (NDCG / diversity / privacy, not timings)
NOT_SUITES = {"bench_gpu.py", "bench_responsible.py", "bench_serving.py", "bench_samplers.py",
              "bench_content_quality.py", "bench_content_speed.py", "bench_content_common.py",
              "bench_sasrec_beauty.py", "bench_sasrec_speed.py", "bench_sasrec_text_init.py", "bench_lightgcn.py", "bench_lightgcn_gowalla.py",
              "bench_lightgcn_ml100k.py", "bench_validation.py"}   # scripts, not suites


def pytest_addoption(parser) -> None:
    group = parser.getgroup("recforge benchmarks")
    group.addoption("--bench-threads", type=int, default=2, help="threads for recforge and every peer (default 2)")
    group.addoption("--bench-sizes", default=DEFAULT_SIZES,
                    help=f"comma-separated sizes to run, or 'all' (default {DEFAULT_SIZES})")


def pytest_configure(config) -> None:
    threads = str(config.getoption("--bench-threads"))
    os.environ.setdefault("OMP_NUM_THREADS", threads)


def pytest_collect_file(file_path: Path, parent):
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_") and file_path.name not in NOT_SUITES
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_ignore_collect(collection_path: Path, config):
    return collection_path.name in NOT_SUITES or None


def pytest_generate_tests(metafunc) -> None:
    if "size" not in metafunc.fixturenames:
        return
    declared = getattr(metafunc.module, "SIZES")
    wanted = metafunc.config.getoption("--bench-sizes")
    chosen = list(declared) if wanted == "all" else [s for s in declared if s in wanted.split(",")]
    metafunc.parametrize("size", chosen)


@pytest.fixture(scope="session")
def threads(pytestconfig) -> Any:
    """The benchmark thread count, with every BLAS/OpenMP pool threadpoolctl knows limited to it."""
    n = pytestconfig.getoption("--bench-threads")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield n
        return
    with threadpool_limits(n):
        yield n


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    """GFLOP/s and GB/s (the case's work / median) next to each timing, and the load average when
    the run ended (a top-level key: machine_info must stay equal between runs to be compared)."""
    output_json["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    for bench in output_json.get("benchmarks", []):
        info, stats = bench.get("extra_info", {}), bench.get("stats") or {}
        median = stats.get("median")
        if median and "flops" in info:
            info["gflop_per_s"] = info["flops"] / median / 1e9
            info["gb_per_s"] = info["bytes"] / median / 1e9


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    """The thread count and CUDA's state (a comparison warns when they differ)."""
    machine_info["bench_threads"] = config.getoption("--bench-threads")
    try:
        from recforge.backend import cuda_info

        info = cuda_info()
        machine_info["recforge_cuda"] = "usable" if info.usable else f"not usable: {info.reason}"
    except Exception as exc:  # the report must not fail for lack of a CUDA build
        machine_info["recforge_cuda"] = f"unknown: {exc}"
