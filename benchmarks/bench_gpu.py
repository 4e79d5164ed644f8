"""GPU benchmarks: recforge's CUDA kernels against the CPU kernels and torch on the same GPU.

One process, same inputs; results are checked to agree before a time is printed. Sections:

- ``copy``: the device's measured copy bandwidth (bytes read + written by a device-to-device
  copy of 2 GiB), the yardstick of the propagate target.
- ``similarity``: item-item cosine, k=50, on a seeded power-law 138,000 users x 27,000 items
  matrix with 20M interactions: CUDA vs the CPU kernel at ``--cpu-threads`` (2 = the target's baseline).
  Target: CUDA >= 20x the 2-thread CPU kernel.
- ``dense``: dense_topk, 200,000 queries x 1,000,000 items x 64 dims, k=100, inputs already on
  the GPU: recforge CUDA vs torch ``mm`` + ``topk`` over query chunks (TF32 off, so both are
  exact float32). CPU figure extrapolated from a query subset. Target: recforge <= torch time.
- ``propagate``: LightGCN, 3 layers, d=64, combine="mean", on the symmetric-normalised
  adjacency of the 20M matrix (40M non-zeros): CUDA vs torch.sparse.mm (cuSPARSE) vs the CPU
  kernel. Effective bandwidth = per layer (A's bytes + one gathered row of E per non-zero +
  one written row per node) / time. Target: >= half the measured copy bandwidth.

    python benchmarks/bench_gpu.py                      # everything, full size
    python benchmarks/bench_gpu.py --sizes quick        # 1/10-ish sizes (~1 min)
    python benchmarks/bench_gpu.py --sizes tiny         # seconds: checks every code path runs
    python benchmarks/bench_gpu.py --only dense propagate --json results.json

Needs a usable CUDA device; torch (with CUDA) and cupy are optional peers.
"""
from __future__ import annotations

import argparse
import json
import time
import traceback
from typing import Callable

import numpy as np
import scipy.sparse as sp

from recforge.bench.inputs import bipartite_adjacency, cached_matrix, exact_powerlaw_interactions
from recforge.bench.timing import measure

RESULTS: dict[str, dict] = {}

# (users, items, interactions) of the power-law matrix; (queries, items, dims, k) of dense_topk.
GRAPH = {"full": (138_000, 27_000, 20_000_000), "quick": (20_000, 5_000, 1_000_000), "tiny": (2_000, 500, 20_000)}
DENSE = {"full": (200_000, 1_000_000, 64, 100), "quick": (20_000, 100_000, 64, 100), "tiny": (300, 3_000, 16, 20)}


def log(msg: str = "") -> None:
    print(msg, flush=True)


def median_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> tuple[float, object]:
    """(median seconds, last result): recforge.bench.timing.measure, the CLI's and the suites' timer."""
    timing, out = measure(fn, repeat=repeat, warmup=warmup)
    return timing.median, out


def powerlaw(n_users: int, n_items: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    """recforge.bench.inputs.exact_powerlaw_interactions (exactly ``nnz`` interactions, one
    vectorised pass), cached as .npz under $RECFORGE_BENCH_CACHE (default: the temp dir), so the
    sections of one GPU check generate it once."""
    return cached_matrix(f"powerlaw_{n_users}_{n_items}_{nnz}_{seed}",
                         lambda: exact_powerlaw_interactions(n_users, n_items, nnz, seed))


def normalized_adjacency(R: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2 (recforge.kernels.normalize_adjacency when present, else
    recforge.bench.inputs.bipartite_adjacency)."""
    try:
        from recforge.kernels import normalize_adjacency
    except ImportError:
        return bipartite_adjacency(R)
    return normalize_adjacency(R)


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def cupy_mod():
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        return cupy
    except Exception:
        return None


# -- sections -------------------------------------------------------------------------------------

def bench_copy(args) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write)."""
    nbytes = (2 << 30) if args.sizes == "full" else (64 << 20)
    torch = torch_cuda()
    if torch is not None:
        a = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").fill_(1.0)
        b = torch.empty_like(a)

        def copy():
            b.copy_(a)
            torch.cuda.synchronize()
    else:
        cupy = cupy_mod()
        if cupy is None:
            log("copy: neither torch (CUDA) nor cupy is available; bandwidth not measured")
            return float("nan")
        a = cupy.ones(nbytes // 4, dtype=cupy.float32)
        b = cupy.empty_like(a)

        def copy():
            b[...] = a
            cupy.cuda.Device().synchronize()
    t, _ = median_time(copy, repeat=10, warmup=2)
    bw = 2 * nbytes / t
    log(f"copy: {nbytes / 2**30:.2f} GiB device-to-device in {t * 1e3:.2f} ms -> {bw / 1e9:.0f} GB/s (read + write)")
    RESULTS["copy"] = {"bytes": nbytes, "seconds": t, "bandwidth_GBps": bw / 1e9}
    return bw


def bench_similarity(args) -> None:
    from recforge.kernels import similarity_topk

    R = powerlaw(*GRAPH[args.sizes])
    X = sp.csr_matrix(R.T)  # items x users: item-item similarity
    k = 50
    log(f"similarity: item-item cosine, k={k}, X = {X.shape[0]:,} items x {X.shape[1]:,} users, nnz {X.nnz:,}")
    t_gpu, S_gpu = median_time(lambda: similarity_topk(X, k, metric="cosine", backend="cuda"),
                               repeat=args.repeat, warmup=1)
    log(f"  recforge cuda            {t_gpu:9.3f} s")
    t_cpu, S_cpu = median_time(lambda: similarity_topk(X, k, metric="cosine", backend="cpu",
                                                       num_threads=args.cpu_threads), repeat=1, warmup=0)
    log(f"  recforge cpu ({args.cpu_threads} threads) {t_cpu:9.3f} s")
    same_ptr = np.array_equal(S_gpu.indptr, S_cpu.indptr)
    close = same_ptr and np.allclose(S_gpu.data, S_cpu.data, rtol=1e-5, atol=1e-6)
    overlap = sum(len(np.intersect1d(S_gpu.indices[S_gpu.indptr[i]:S_gpu.indptr[i + 1]],
                                     S_cpu.indices[S_cpu.indptr[i]:S_cpu.indptr[i + 1]]))
                  for i in range(X.shape[0])) / max(S_cpu.nnz, 1)
    log(f"  agreement: same row counts {same_ptr}, scores allclose {close}, neighbour overlap {overlap:.5f}")
    speedup = t_cpu / t_gpu
    log(f"  speed-up cuda / cpu({args.cpu_threads} threads): {speedup:.1f}x  (target >= 20x: "
        f"{'MET' if speedup >= 20 else 'NOT MET'})")
    RESULTS["similarity"] = {"shape": list(X.shape), "nnz": int(X.nnz), "k": k, "cuda_s": t_gpu, "cpu_s": t_cpu,
                             "cpu_threads": args.cpu_threads, "speedup": speedup, "scores_agree": bool(close),
                             "neighbour_overlap": overlap}


def bench_dense(args) -> None:
    from recforge.kernels._cuda_dispatch import dense_topk_cuda

    torch = torch_cuda()
    cupy = cupy_mod()
    m, n, d, k = DENSE[args.sizes]
    log(f"dense_topk: {m:,} queries x {n:,} items x {d} dims, k={k}, inputs on the GPU")
    rng = np.random.default_rng(0)
    Qh = rng.standard_normal((m, d), dtype=np.float32)
    Vh = rng.standard_normal((n, d), dtype=np.float32)
    if cupy is not None:
        Q, V = cupy.asarray(Qh), cupy.asarray(Vh)
        to_host = cupy.asnumpy
    elif torch is not None:
        Q, V = torch.from_numpy(Qh).cuda(), torch.from_numpy(Vh).cuda()
        to_host = lambda t: t.cpu().numpy()  # noqa: E731
    else:
        Q, V, to_host = Qh, Vh, np.asarray
        log("  (no cupy / torch: inputs are numpy and copied to the GPU inside each call)")
    t_rf, (I_rf, S_rf) = median_time(lambda: dense_topk_cuda(Q, V, k), repeat=args.repeat, warmup=1)
    I_rf, S_rf = to_host(I_rf), to_host(S_rf)
    flops = 2.0 * m * n * d
    log(f"  recforge cuda            {t_rf:9.3f} s   ({flops / t_rf / 1e12:.1f} TFLOP/s of fp32 dot products)")
    entry = {"m": m, "n": n, "d": d, "k": k, "cuda_s": t_rf}
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        Qt, Vt = torch.from_numpy(Qh).cuda(), torch.from_numpy(Vh).cuda()
        chunk = 4096

        def torch_topk():
            outs_i, outs_s = [], []
            for s0 in range(0, m, chunk):
                scores = Qt[s0:s0 + chunk] @ Vt.T
                val, idx = torch.topk(scores, k, dim=1)
                outs_i.append(idx)
                outs_s.append(val)
            res = torch.cat(outs_i), torch.cat(outs_s)
            torch.cuda.synchronize()
            return res

        t_t, (I_t, S_t) = median_time(torch_topk, repeat=args.repeat, warmup=1)
        I_t, S_t = I_t.cpu().numpy(), S_t.cpu().numpy()
        log(f"  torch mm+topk (chunk {chunk}) {t_t:9.3f} s")
        scores_ok = np.allclose(S_rf, S_t, rtol=1e-4, atol=1e-4)
        same = float(np.mean(I_rf == I_t))
        log(f"  agreement with torch: scores allclose {scores_ok}, identical indices {same:.5f} "
            f"(near-ties may swap)")
        ratio = t_t / t_rf
        log(f"  torch time / recforge time: {ratio:.2f}  (target >= 1: {'MET' if ratio >= 1 else 'NOT MET'})")
        entry.update(torch_s=t_t, torch_over_recforge=ratio, scores_agree=bool(scores_ok), same_indices=same)
    else:
        log("  torch with CUDA not available: no torch comparison")
    try:
        from recforge.kernels import dense_topk as dense_topk_cpu
    except ImportError:
        dense_topk_cpu = None
    if dense_topk_cpu is not None:
        sub = min(m, 2_000 if args.sizes == "full" else 200)
        t_c, (I_c, S_c) = median_time(lambda: dense_topk_cpu(Qh[:sub], Vh, k, num_threads=args.cpu_threads,
                                                             backend="cpu"), repeat=1, warmup=0)
        est = t_c * m / sub
        log(f"  recforge cpu ({args.cpu_threads} threads) {t_c:9.3f} s for {sub:,} queries -> "
            f"{est:9.1f} s estimated for {m:,}  (cuda speed-up ~{est / t_rf:.0f}x)")
        log(f"  agreement with cpu on those queries: scores allclose "
            f"{np.allclose(S_rf[:sub], S_c, rtol=1e-4, atol=1e-4)}, identical indices {np.mean(I_rf[:sub] == I_c):.5f}")
        entry.update(cpu_s_estimated=est, cpu_threads=args.cpu_threads)
    else:
        log("  recforge.kernels.dense_topk (CPU) not in this tree: no CPU figure")
    RESULTS["dense"] = entry


def bench_propagate(args, copy_bw: float) -> None:
    from recforge.kernels._cuda_dispatch import propagate_cuda, spmm_cuda

    torch = torch_cuda()
    cupy = cupy_mod()
    R = powerlaw(*GRAPH[args.sizes])
    A = normalized_adjacency(R).astype(np.float32)
    nodes, nnz, d, layers = A.shape[0], A.nnz, 64, 3
    log(f"propagate: {nodes:,} nodes, {nnz:,} non-zeros, d={d}, {layers} layers, combine='mean'")
    E = np.random.default_rng(1).standard_normal((nodes, d), dtype=np.float32) * 0.1
    if cupy is not None:
        import cupyx.scipy.sparse as csp

        A_dev, E_dev, to_host = csp.csr_matrix(A), cupy.asarray(E), cupy.asnumpy
    elif torch is not None:
        A_dev, E_dev, to_host = A, torch.from_numpy(E).cuda(), (lambda t: t.cpu().numpy())  # noqa: E731
        log("  (no cupy: A is copied from the host inside each call)")
    else:
        A_dev, E_dev, to_host = A, E, np.asarray
        log("  (no cupy / torch: A and E are copied from the host inside each call)")
    layer_bytes = nnz * (4 + 4) + (nodes + 1) * 8 + nnz * d * 4 + nodes * d * 4
    t_s, Y = median_time(lambda: spmm_cuda(A_dev, E_dev), repeat=max(args.repeat, 5), warmup=2)
    bw_s = layer_bytes / t_s
    log(f"  recforge cuda spmm (1 layer) {t_s * 1e3:8.2f} ms  effective {bw_s / 1e9:6.0f} GB/s")
    t_p, P = median_time(lambda: propagate_cuda(A_dev, E_dev, layers, "mean"), repeat=max(args.repeat, 5), warmup=2)
    bw_p = layers * layer_bytes / t_p
    frac = bw_p / copy_bw if copy_bw == copy_bw else float("nan")
    log(f"  recforge cuda propagate   {t_p * 1e3:8.2f} ms  effective {bw_p / 1e9:6.0f} GB/s = {frac:.2f} x copy "
        f"bandwidth (target >= 0.5: {'MET' if frac >= 0.5 else 'NOT MET'})")
    P = to_host(P)
    entry = {"nodes": nodes, "nnz": nnz, "d": d, "layers": layers, "spmm_s": t_s, "propagate_s": t_p,
             "effective_GBps": bw_p / 1e9, "fraction_of_copy": frac}
    # Reference for agreement: float64 scipy, layer by layer.
    ref = E.astype(np.float64)
    acc, cur = ref.copy(), ref
    A64 = A.astype(np.float64)
    for _ in range(layers):
        cur = A64 @ cur
        acc += cur
    ref = acc / (layers + 1)
    ok = np.allclose(P, ref, rtol=1e-4, atol=1e-5)
    log(f"  agreement with float64 scipy: {ok} (max abs diff {np.max(np.abs(P - ref)):.2e})")
    entry["agrees"] = bool(ok)
    if torch is not None:
        At = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)), torch.from_numpy(A.indices.astype(np.int64)),
                                     torch.from_numpy(A.data), size=A.shape).cuda()
        Et = torch.from_numpy(E).cuda()

        def torch_prop():
            acc_t, cur_t = Et.clone(), Et
            for _ in range(layers):
                cur_t = torch.sparse.mm(At, cur_t)
                acc_t += cur_t
            acc_t /= layers + 1
            torch.cuda.synchronize()
            return acc_t

        t_t, Pt = median_time(torch_prop, repeat=max(args.repeat, 5), warmup=2)
        log(f"  torch.sparse.mm loop      {t_t * 1e3:8.2f} ms  (torch / recforge = {t_t / t_p:.2f})")
        log(f"  agreement with torch: {np.allclose(P, Pt.cpu().numpy(), rtol=1e-4, atol=1e-5)}")
        entry["torch_s"] = t_t
    try:
        from recforge.kernels import propagate as propagate_cpu
    except ImportError:
        propagate_cpu = None
    if propagate_cpu is not None:
        t_c, Pc = median_time(lambda: propagate_cpu(A, E, layers, combine="mean", num_threads=args.cpu_threads,
                                                    backend="cpu"), repeat=1, warmup=0)
        log(f"  recforge cpu ({args.cpu_threads} threads)   {t_c * 1e3:8.2f} ms  (cuda speed-up {t_c / t_p:.0f}x); "
            f"agree {np.allclose(P, Pc, rtol=1e-4, atol=1e-5)}")
        entry["cpu_s"] = t_c
    else:
        log("  recforge.kernels.propagate (CPU) not in this tree: no CPU figure")
    RESULTS["propagate"] = entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["similarity", "dense", "propagate"],
                        choices=["similarity", "dense", "propagate"])
    parser.add_argument("--sizes", default="full", choices=sorted(GRAPH), help="problem sizes (full = the targets')")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args()

    from recforge.backend import cuda_info

    info = cuda_info()
    if not info.usable:
        log(f"CUDA is not usable here: {info.reason}")
        return 2
    for dev in info.details["devices"]:
        log(f"device {dev['index']}: {dev['name']}, compute capability {dev['compute_capability']}, "
            f"{dev['total_memory'] / 2**30:.1f} GiB, {dev.get('multiprocessors', '?')} SMs")
    log(f"driver {info.details['driver_version']}, runtime {info.details['runtime_version']}, "
        f"built for {info.details['compiled_architectures']}")
    failures = 0
    copy_bw = float("nan")
    try:
        copy_bw = bench_copy(args)
    except Exception:
        failures += 1
        traceback.print_exc()
    sections = {"similarity": lambda: bench_similarity(args), "dense": lambda: bench_dense(args),
                "propagate": lambda: bench_propagate(args, copy_bw)}
    for name in ("propagate", "dense", "similarity"):  # cheapest first: a timeout still leaves figures
        if name not in args.only:
            continue
        log("")
        t0 = time.perf_counter()
        try:
            sections[name]()
        except Exception:
            failures += 1
            log(f"{name}: FAILED")
            traceback.print_exc()
        log(f"({name} section took {time.perf_counter() - t0:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(RESULTS, f, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
