"""pytest-benchmark plumbing shared by the suites in benchmarks/ (see benchmarks/README.md).

* ``bench_*.py`` files are collected as test modules (bench_gpu.py is the GPU check's script).
* ``--bench-threads N`` (default 2): the thread count of recforge and every peer; BLAS pools are
  limited to it too (threadpoolctl) and OMP_NUM_THREADS is set when it was not.
* ``--bench-sizes a,b`` (default ``tiny,small,ml100k,gowalla``; ``all`` for every size) picks the
  ``size`` parameters a suite declares in its ``SIZES``.
* Inputs, kernel cases (recforge.bench.cases) and recforge's reference results are built once per
  session. Every timed case first checks its result against recforge's; the JSON output gains the
  case's flops/bytes, GFLOP/s and GB/s, and the machine's load average.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = "tiny,small,ml100k,gowalla"
NOT_SUITES = {"bench_gpu.py"}


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


def data_root() -> Path:
    env = os.environ.get("RECFORGE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def dataset_matrix(name: str):
    """The binary users x items CSR of a shared dataset (ML-100K ratings, Gowalla's train split)."""
    folder = {"ml100k": "ml-100k", "gowalla": "lightgcn-gowalla"}[name]
    if not (data_root() / folder).is_dir():
        pytest.skip(f"dataset {folder} not found under {data_root()} (set RECFORGE_DATA_DIR)")
    from recforge.datasets import lightgcn, movielens

    if name == "ml100k":
        return movielens("100k", data_dir=data_root(), download=False, metadata=False).to_csr(values=False)
    return lightgcn("gowalla", data_dir=data_root(), download=False).train.to_csr(values=False)


_INPUTS: dict[str, Any] = {}
_CASES: dict[tuple, Any] = {}
_REFERENCES: dict[tuple, Any] = {}


def kernel_inputs(size: str):
    """recforge.bench inputs of a synthetic size or a dataset, built once per session."""
    if size not in _INPUTS:
        from recforge.bench import SIZES, from_matrix, synthetic

        _INPUTS[size] = synthetic(size) if size in SIZES else from_matrix(dataset_matrix(size), size)
    return _INPUTS[size]


def kernel_case(kernel: str, size: str, threads: int, variant: str = "", **options):
    """The recforge.bench case of ``kernel`` on ``size`` (recforge + every installed peer)."""
    key = (kernel, size, threads, variant)
    if key not in _CASES:
        import recforge.kernels as K
        from recforge.bench.cases import BUILDERS
        from recforge.bench.runner import cuda_status

        _CASES[key] = BUILDERS[kernel](kernel_inputs(size), getattr(K, kernel), [threads], cuda_status(), True,
                                       **options)
    return _CASES[key]


def group_name(kernel: str, size: str, variant: str = "") -> str:
    return f"{kernel} {size}" + (f" {variant}" if variant else "")


def run_synced(impl):
    """impl.run, waiting for queued device work before returning (so timings include it)."""
    if impl.sync is None:
        return impl.run

    def run():
        out = impl.run()
        impl.sync()
        return out
    return run


def time_case(benchmark, kernel: str, size: str, key: str, threads: int, variant: str = "", **options) -> None:
    """Check one implementation's result against recforge's CPU result, then time it."""
    from recforge.bench.peers import to_host

    case = kernel_case(kernel, size, threads, variant, **options)
    impl = case.impl(key)
    if impl is None or impl.run is None:
        if impl is not None:
            pytest.skip(impl.skipped)
        pytest.skip("needs a usable CUDA device and torch/cupy with CUDA" if "cuda" in key
                    else f"{key} is not part of this case")
    benchmark.group = group_name(kernel, size, variant)
    ref_key = (kernel, size, threads, variant)
    if ref_key not in _REFERENCES:
        _REFERENCES[ref_key] = to_host(case.impl("recforge-cpu").run())
    reference = _REFERENCES[ref_key]
    run = run_synced(impl)
    result = to_host(run())
    if key == "recforge-cpu":
        detail = "identical to its first run" if case.exact(reference, result) else "differs from its first run"
        assert case.exact(reference, result), f"recforge is not deterministic: {detail}"
    elif impl.name.startswith("recforge") and case.exact(reference, result):
        detail = "identical to recforge cpu"
    else:
        ok, detail = case.agree(reference, result)
        assert ok, f"{impl.name} ({impl.backend}) disagrees with recforge: {detail}"
    benchmark.extra_info.update(case=case.description, implementation=impl.name, backend=impl.backend,
                                threads=impl.threads, agreement=detail, flops=case.flops, bytes=case.bytes)
    benchmark(run)


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    """GFLOP/s and GB/s (the case's work / median) next to each timing."""
    for bench in output_json.get("benchmarks", []):
        info, stats = bench.get("extra_info", {}), bench.get("stats") or {}
        median = stats.get("median")
        if median and "flops" in info:
            info["gflop_per_s"] = info["flops"] / median / 1e9
            info["gb_per_s"] = info["bytes"] / median / 1e9


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    """The load at the start (the machine may be shared), the thread count and CUDA's state."""
    machine_info["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    machine_info["bench_threads"] = config.getoption("--bench-threads")
    try:
        from recforge.backend import cuda_info

        info = cuda_info()
        machine_info["recforge_cuda"] = "usable" if info.usable else f"not usable: {info.reason}"
    except Exception as exc:  # the report must not fail for lack of a CUDA build
        machine_info["recforge_cuda"] = f"unknown: {exc}"
