"""What the suites in benchmarks/ share: datasets, session caches of inputs, cases and reference
results, and :func:`time_case` (check an implementation against recforge, then time it).

(A module of its own rather than conftest.py: suites import it as ``benchmarks.harness``, which
cannot be confused with tests/conftest.py when both folders run in one session.)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


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


def ml20m_like():
    """recforge.bench.inputs.cached_powerlaw_interactions(): 138,000 x 27,000, 19.66M interactions
    whose R^T R has 27.5 G multiply-adds (MovieLens-20M: 28 G); generation takes minutes, once."""
    from recforge.bench.inputs import cached_powerlaw_interactions

    return cached_powerlaw_interactions()


_INPUTS: dict[str, Any] = {}
_CASES: dict[tuple, Any] = {}
_REFERENCES: dict[tuple, Any] = {}


def kernel_inputs(size: str):
    """recforge.bench inputs of a synthetic size or a dataset, built once (the last size is kept)."""
    if size not in _INPUTS:
        from recforge.bench import SIZES, from_matrix, synthetic

        _INPUTS.clear()   # pytest runs a size's cases together: holding one size bounds the memory

        if size in SIZES:
            _INPUTS[size] = synthetic(size)
        elif size == "ml20m-like":
            _INPUTS[size] = from_matrix(ml20m_like(), "ml20m-like")
        else:
            _INPUTS[size] = from_matrix(dataset_matrix(size), size)
    return _INPUTS[size]


def kernel_case(kernel: str, size: str, threads: int, variant: str = "", **options):
    """The recforge.bench case of ``kernel`` on ``size`` (recforge + every installed peer)."""
    key = (kernel, size, threads, variant)
    if key not in _CASES:
        _CASES.clear()
        _REFERENCES.clear()
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
    if key == "recforge-cpu":   # the reference itself: deterministic, and within its own case's rules
        assert case.exact(reference, result), "recforge differs from its first run (not deterministic)"
        ok, detail = case.agree(reference, result)
        assert ok, f"recforge breaks its case's rules: {detail}"
        detail = "identical to its first run"
    elif impl.name.startswith("recforge") and case.exact(reference, result):
        detail = "identical to recforge cpu"
    else:
        ok, detail = case.agree(reference, result)
        assert ok, f"{impl.name} ({impl.backend}) disagrees with recforge: {detail}"
    benchmark.extra_info.update(case=case.description, implementation=impl.name, backend=impl.backend,
                                threads=impl.threads, agreement=detail, flops=case.flops, bytes=case.bytes)
    benchmark(run)
