"""Reference rates of this machine, measured the same way as the kernels (median of repetitions).

* copy bandwidth: ``np.copyto`` of a 256 MiB float32 array (one thread, as numpy copies);
  bytes moved = read + write = 2 x 256 MiB.
* GEMM rate: numpy float32 ``A @ B`` with A, B 2048 x 2048 (numpy's BLAS, its own threads);
  flops = 2 n^3.
* on a usable GPU, when torch with CUDA is installed: the same two figures on the device
  (a 1 GiB ``copy_`` and an 8192^3 float32 ``mm``).
"""
from __future__ import annotations

import numpy as np

from recforge.bench.timing import measure

COPY_BYTES = 256 << 20
GEMM_N = 2048


def copy_bandwidth(repeat: int = 5) -> dict:
    """GB/s of a large numpy copy (read + write counted)."""
    src = np.ones(COPY_BYTES // 4, dtype=np.float32)
    dst = np.empty_like(src)
    timing, _ = measure(lambda: np.copyto(dst, src), repeat=repeat, warmup=1)
    return {"what": "numpy copy of a 256 MiB float32 array (1 thread; read + write)",
            "gb_per_s": 2 * COPY_BYTES / timing.median / 1e9, "median_s": timing.median, "spread": timing.spread}


def gemm_rate(repeat: int = 5) -> dict:
    """GFLOP/s of a numpy float32 matrix product (2 n^3 flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    b = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    out = np.empty_like(a)
    timing, _ = measure(lambda: np.matmul(a, b, out=out), repeat=repeat, warmup=1)
    return {"what": f"numpy float32 matmul {GEMM_N}x{GEMM_N} @ {GEMM_N}x{GEMM_N} (numpy's BLAS threads)",
            "gflop_per_s": 2 * GEMM_N ** 3 / timing.median / 1e9, "median_s": timing.median,
            "spread": timing.spread}


def cuda_rates(repeat: int = 5) -> dict | None:
    """Device copy GB/s and float32 GEMM GFLOP/s via torch, or None without torch CUDA."""
    from recforge.bench.cases import torch_cuda_available

    if not torch_cuda_available():
        return None
    import torch

    sync = torch.cuda.synchronize
    src = torch.ones((1 << 30) // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    copy, _ = measure(lambda: dst.copy_(src), repeat=repeat, warmup=1, sync=sync)
    n = 8192
    a = torch.randn((n, n), device="cuda")
    b = torch.randn((n, n), device="cuda")
    gemm, _ = measure(lambda: torch.mm(a, b), repeat=repeat, warmup=1, sync=sync)
    name = torch.cuda.get_device_name()
    del src, dst, a, b
    torch.cuda.empty_cache()
    return {"device": name, "copy_gb_per_s": 2 * (1 << 30) / copy.median / 1e9,
            "gemm_gflop_per_s": 2 * n ** 3 / gemm.median / 1e9,
            "what": "torch: 1 GiB device copy (read + write); float32 mm 8192^3 (torch's current matmul precision setting)"}
