"""recforge.distributed against the single-process kernel on the 20M-interaction synthetic matrix.

Item-item cosine, k=50 (the similarity benchmark's job). Rows: the single-process kernel with
2 threads; a LocalCluster of 1 worker x 2 threads (the overhead target: <= 10%); 2 workers x
1 thread (the scaling on a 2-core machine). Every distributed result is checked to equal the
single-process CSR bit for bit before it is timed. Reported: medians, ratios, blocks, and the
bytes shipped (the candidate matrix once per worker, each task's block of rows).

    python benchmarks/bench_distributed.py [--size full|small] [--repeat 3] [--block-rows N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def synthetic(size: str):
    try:
        from recforge.bench.inputs import cached_powerlaw_interactions
    except ImportError:
        from common import cached_powerlaw_interactions
    if size == "small":
        return cached_powerlaw_interactions(n_users=20_000, n_items=5_000, nnz=1_000_000)
    return cached_powerlaw_interactions()


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["full", "small"], default="full")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--block-rows", type=int, default=None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    import recforge.distributed as rd
    from recforge.kernels import similarity_topk

    X = synthetic(args.size).T.tocsr()          # items x users: item-item similarity
    X.sort_indices()
    print(f"input: {X.shape[0]:,} items x {X.shape[1]:,} users, {X.nnz:,} interactions; cosine, k={args.k}")
    similarity_topk(X[:200], args.k, X, num_threads=2)
    single, want = timed(lambda: similarity_topk(X, args.k, metric="cosine", num_threads=2), args.repeat)
    rows = [("single process, 2 threads", single, "-", "-")]
    for workers, threads in ((1, 2), (2, 1)):
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            run = lambda: rd.similarity_topk(X, args.k, metric="cosine", client=client,  # noqa: E731
                                             block_rows=args.block_rows)
            got = run()
            same = (np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
                    and np.array_equal(got.data, want.data))
            if not same:
                raise SystemExit(f"{workers} worker(s): result differs from the single-process kernel")
            seconds, _ = timed(run, args.repeat)
            from recforge.distributed.blocks import row_blocks
            blocks = row_blocks(X.shape[0], args.block_rows, workers)
            shipped = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
            per_task = shipped / len(blocks)
            rows.append((f"{workers} worker(s) x {threads} thread(s)", seconds,
                         f"{len(blocks)} blocks", f"{shipped / 2**20:.0f} MiB scattered once per worker, "
                         f"~{per_task / 2**20:.1f} MiB of rows per task"))
    print(f"{'configuration':32} {'median s':>9} {'vs single':>10}  blocks / bytes")
    for name, seconds, blocks, shipped in rows:
        print(f"{name:32} {seconds:9.3f} {seconds / single:9.2f}x  {blocks} {shipped}")
    print("results identical to the single-process kernel: yes (checked before timing)")


if __name__ == "__main__":
    main()
