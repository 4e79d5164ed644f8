"""Run every case: warm-up, repetitions, agreement with the reference, ratios, rates."""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from recforge.bench import machine
from recforge.bench.cases import BUILDERS, KERNELS, Case, to_host
from recforge.bench.inputs import BenchInputs
from recforge.bench.timing import measure


def default_threads() -> list[int]:
    """1, 2, 4, ... up to the number of cores OpenMP may use, and that number itself."""
    from recforge import _core

    n = max(1, int(_core.max_threads()))
    counts, t = [], 1
    while t < n:
        counts.append(t)
        t *= 2
    return counts + [n]


def available_kernels(wanted: list[str] | None = None) -> tuple[dict[str, Callable], list[str]]:
    """(kernel name -> function present in recforge.kernels, names missing from this build)."""
    import recforge.kernels as K

    names = list(wanted or KERNELS)
    found = {name: getattr(K, name) for name in names if callable(getattr(K, name, None))}
    return found, [name for name in names if name not in found]


def cuda_status() -> tuple[bool, str]:
    from recforge.backend import cuda_info

    info = cuda_info()
    return info.usable, info.reason


def run_benchmark(inputs: BenchInputs, kernels: list[str] | None = None, threads: list[int] | None = None,
                  repeat: int = 5, warmup: int = 1, peers: bool = True,
                  progress: Callable[[str], Any] | None = None) -> dict:
    """Measure the machine, then every implementation of every available kernel on ``inputs``.

    Returns a JSON-ready dict: ``machine`` (copy GB/s, GEMM GFLOP/s), ``inputs``, ``settings``,
    ``missing_kernels`` and ``rows`` (one per implementation; see :func:`_row`).
    ``progress(label)`` is called before each measurement.
    """
    threads = sorted(set(threads or default_threads()))
    found, missing = available_kernels(kernels)
    cuda = cuda_status()
    tick = progress or (lambda label: None)
    tick("machine: copy bandwidth")
    copy = machine.copy_bandwidth(repeat)
    tick("machine: GEMM rate")
    gemm = machine.gemm_rate(repeat)
    device = machine.cuda_rates(repeat) if cuda[0] else None
    rows: list[dict] = []
    for name, fn in found.items():
        tick(f"{name}: preparing inputs")
        case = BUILDERS[name](inputs, fn, threads, cuda, peers)
        rows += run_case(case, repeat, warmup, tick)
    return {
        "machine": {"copy": copy, "gemm": gemm, "cuda_device": device, "cores": max(default_threads()), "cuda_usable": cuda[0],
                    "cuda_reason": cuda[1], "cpu_count": os.cpu_count()},
        "inputs": inputs.label,
        "settings": {"repeat": repeat, "warmup": warmup, "threads": threads, "peers": peers},
        "kernels": list(found),
        "missing_kernels": missing,
        "rows": rows,
    }


def measurement_count(kernels: list[str] | None, threads: list[int], peers: bool) -> int:
    """About how many measurements run_benchmark makes (for a progress bar)."""
    per_kernel = len(threads) + 1 + (4 if peers else 0)
    return 2 + len(kernels or KERNELS) * (per_kernel + 1)


def run_case(case: Case, repeat: int, warmup: int, tick: Callable[[str], Any]) -> list[dict]:
    rows, reference = [], None
    for impl in case.impls:
        label = f"{case.kernel}: {impl.name} {impl.backend}" + (f" x{impl.threads}" if impl.threads else "")
        tick(label)
        if impl.run is None:
            rows.append(_row(case, impl, None, impl.skipped))
            continue
        start = time.perf_counter()
        try:
            timing, result = measure(impl.run, repeat=repeat, warmup=warmup, sync=impl.sync)
        except Exception as exc:  # a peer or backend that fails here is reported, not fatal
            rows.append(_row(case, impl, None, f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"))
            continue
        row = _row(case, impl, timing, "")
        row["wall_s"] = time.perf_counter() - start
        result = to_host(result)
        if reference is None:
            reference = result
            row["agrees"] = "reference"
        elif impl.name.startswith("recforge") and case.exact is not None and case.exact(reference, result):
            row["agrees"] = "yes (identical)"
        else:
            ok, detail = case.agree(reference, result)
            row["agrees"] = "yes" if ok else "NO"
            row["agreement"] = detail
        rows.append(row)
    peer_times = [r["median_s"] for r in rows if r["median_s"] is not None
                  and not r["implementation"].startswith("recforge") and r["agrees"] == "yes"]
    fastest = min(peer_times) if peer_times else None
    for r in rows:
        r["ratio_to_fastest_peer"] = (r["median_s"] / fastest) if fastest and r["median_s"] is not None else None
    return rows


def _row(case: Case, impl, timing, note: str) -> dict:
    median = timing.median if timing else None
    return {
        "kernel": case.kernel, "case": case.description, "implementation": impl.name, "backend": impl.backend,
        "threads": impl.threads, "median_s": median, "min_s": timing.min if timing else None,
        "max_s": timing.max if timing else None, "spread": timing.spread if timing else None,
        "times_s": timing.times if timing else [],
        "gflop_per_s": case.flops / median / 1e9 if median else None,
        "gb_per_s": case.bytes / median / 1e9 if median else None,
        "agrees": "", "note": note,
    }
