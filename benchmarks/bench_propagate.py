"""LightGCN propagation: recforge.kernels.propagate against torch.sparse.mm (CSR) and scipy.

Same inputs, same thread count, one process. Graphs: the adjacency of a synthetic users x items
matrix (default 138,000 x 27,000 with 20M interactions, so 40M non-zeros, power-law degrees)
and the LightGCN Gowalla training split when it is found. Results are checked to agree; medians
and ratios are printed with the effective bandwidth (bytes that must move / time) next to a
measured memory-copy bandwidth.

    python benchmarks/bench_propagate.py --threads 2            # full size
    python benchmarks/bench_propagate.py --threads 2 --quick    # smoke run
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common import median_time


def power_law_draws(rng, size: int, count: int, offset: float, exponent: float) -> np.ndarray:
    """`size` integers in [0, count) with density ~ (x + offset)^-exponent (inverse CDF, continuous)."""
    e = 1.0 - exponent
    lo, hi = offset ** e, (count + offset) ** e
    x = (lo + rng.random(size) * (hi - lo)) ** (1.0 / e) - offset
    return np.minimum(x.astype(np.int64), count - 1)


def synthetic_interactions(users: int, items: int, interactions: int, seed: int = 0) -> sp.csr_matrix:
    """Binary users x items matrix with exactly `interactions` entries and power-law degrees."""
    rng = np.random.default_rng(seed)
    codes = np.empty(0, dtype=np.int64)
    while codes.size < interactions:
        draw = int((interactions - codes.size) * 1.25) + 1000
        new = power_law_draws(rng, draw, users, 10, 0.6) * items + power_law_draws(rng, draw, items, 50, 0.9)
        codes = np.concatenate([codes, new])
        codes.sort()
        codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])]  # np.unique, without its hashing
    codes = np.sort(rng.choice(codes, size=interactions, replace=False))
    indptr = np.searchsorted(codes // items, np.arange(users + 1)).astype(np.int64)
    return sp.csr_matrix((np.ones(interactions, dtype=np.float32), (codes % items).astype(np.int32), indptr),
                         shape=(users, items))


def gowalla_interactions() -> sp.csr_matrix | None:
    root = os.environ.get("RECFORGE_DATA_DIR")
    candidates = [Path(root)] if root else []
    candidates.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    for base in candidates:
        path = base / "lightgcn-gowalla" / "train.txt"
        if path.exists():
            rows, cols = [], []
            for line in path.read_text().split("\n"):
                parts = line.split()
                if len(parts) > 1:
                    items = np.array(parts[1:], dtype=np.int64)
                    rows.append(np.full(items.size, int(parts[0]), dtype=np.int64))
                    cols.append(items)
            u, i = np.concatenate(rows), np.concatenate(cols)
            R = sp.csr_matrix((np.ones(u.size, dtype=np.float32), (u, i)))
            R.sum_duplicates()
            R.data[:] = 1.0
            return R
    return None


def copy_bandwidth(threads: int) -> float:
    """Bytes read + written per second by a large array copy (best of numpy and torch's parallel copy)."""
    import torch

    src = np.ones(256 * 2**20 // 4, dtype=np.float32)  # 256 MiB
    dst = np.empty_like(src)
    t_np, _ = median_time(lambda: np.copyto(dst, src), 5)
    ts, td = torch.from_numpy(src), torch.from_numpy(dst)
    t_torch, _ = median_time(lambda: td.copy_(ts), 5)
    return 2 * src.nbytes / min(t_np, t_torch)


def run_graph(name: str, R: sp.csr_matrix, layers: int, dim: int, threads: int, repeats: int, membw: float):
    import torch
    from recforge.kernels import normalize_adjacency, propagate

    A = normalize_adjacency(R)
    n = A.shape[0]
    E = np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32) * 0.1
    print(f"\n== {name}: {R.shape[0]:,} users x {R.shape[1]:,} items, A {n:,} x {n:,} with {A.nnz:,} non-zeros, "
          f"{layers} layers, d={dim}, threads={threads}")

    t_rf, out_rf = median_time(lambda: propagate(A, E, layers, combine="mean", num_threads=threads), repeats)

    At = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)), torch.from_numpy(A.indices.astype(np.int64)),
                                 torch.from_numpy(A.data), size=A.shape)
    Et = torch.from_numpy(E)

    def torch_propagate():
        acc, x = Et.clone(), Et
        for _ in range(layers):
            x = torch.sparse.mm(At, x)
            acc += x
        return acc / (layers + 1)

    with torch.no_grad():
        t_torch, out_torch = median_time(torch_propagate, repeats)

    def scipy_propagate():
        acc, x = E.copy(), E
        for _ in range(layers):
            x = A @ x
            acc += x
        return acc / (layers + 1)

    t_scipy, out_scipy = median_time(scipy_propagate, max(1, repeats // 2))

    for peer, out in (("torch", out_torch.numpy()), ("scipy", out_scipy)):
        err = float(np.abs(out - out_rf).max())
        scale = float(np.abs(out).max())
        assert err <= 1e-4 * max(scale, 1.0), f"recforge and {peer} disagree: max |diff| {err}"

    idx_bytes = A.indices.itemsize
    a_bytes = A.nnz * (idx_bytes + A.data.itemsize) + (n + 1) * A.indptr.itemsize
    row_bytes = n * dim * 4
    must_move = layers * (a_bytes + 2 * row_bytes) + row_bytes
    print(f"   recforge.propagate    {t_rf:8.3f} s   effective {must_move / t_rf / 1e9:6.1f} GB/s "
          f"(memory copy: {membw / 1e9:.1f} GB/s)")
    print(f"   torch.sparse.mm (CSR) {t_torch:8.3f} s   ratio torch / recforge = {t_torch / t_rf:5.2f}x")
    print(f"   scipy A @ E (1 thread){t_scipy:8.3f} s   ratio scipy / recforge = {t_scipy / t_rf:5.2f}x")
    print(f"   bytes that must move: {must_move / 1e9:.2f} GB = layers x (A {a_bytes / 1e9:.2f} GB + read E_l + "
          f"write E_l+1, {row_bytes / 1e9:.3f} GB each) + result")
    gathered = layers * (a_bytes + A.nnz * dim * 4 + row_bytes) + row_bytes
    print(f"   bytes touched counting every neighbour-row gather: {gathered / 1e9:.1f} GB "
          f"-> {gathered / t_rf / 1e9:.1f} GB/s (mostly served by the caches)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small synthetic graph, 2 repeats")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.quick:
        users, items, nnz, repeats = 13_800, 2_700, 200_000, 2
    else:
        users, items, nnz, repeats = 138_000, 27_000, 20_000_000, args.repeats
    membw = copy_bandwidth(args.threads)
    print(f"memory copy bandwidth (read + write): {membw / 1e9:.1f} GB/s")
    start = time.perf_counter()
    R = synthetic_interactions(users, items, nnz)
    print(f"synthetic matrix built in {time.perf_counter() - start:.1f} s")
    run_graph("synthetic", R, args.layers, args.dim, args.threads, repeats, membw)
    G = gowalla_interactions()
    if G is None:
        print("\nGowalla not found (set RECFORGE_DATA_DIR or put it in ../shared/data/lightgcn-gowalla); skipped")
    else:
        run_graph("Gowalla (LightGCN train split)", G, args.layers, args.dim, args.threads, repeats, membw)


if __name__ == "__main__":
    main()
