"""recforge.distributed.similarity_topk on a Dask LocalCluster against the single-process kernel.

Group "similarity_topk distributed <size>": item-item cosine, k=50, on the size's users x items
matrix (recforge.bench inputs; ``ml20m-like`` is the 20M-interaction matrix) computed by

* ``single-process``: ``recforge.kernels.similarity_topk`` with ``--bench-threads`` threads;
* ``dask-1xT``: a LocalCluster of 1 worker process x T threads (the overhead of distribution);
* ``dask-Tx1``: T worker processes x 1 thread (the scaling across processes).

Y=None takes the kernel's half product when it pays (it does on ml20m-like): X is scattered to
every worker once and each worker forms the pairs of one row range (one worker: the plain kernel
call, whichever product it picks). Checked before timing: every distributed result equals the
single-process CSR bit for bit. What is timed is a job on a long-lived cluster reused across jobs:
starting the cluster (and the first, checked call that warms it) is not timed; every timed call
includes the client's checks, scattering X to the workers (X is not kept there between calls),
the tasks and gathering (and merging) their results. extra_info holds the path taken, the task
count, the bytes scattered to each worker and the largest task's own bytes (its arguments).

    pytest benchmarks/bench_distributed.py --benchmark-only --bench-sizes ml20m-like

Script mode (single-process and distributed calls alternated round by round, wall and CPU ratios;
the same measurement as ``recforge bench --backend dask``, :mod:`recforge.bench.distributed`):

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive python -m benchmarks.bench_distributed ml20m-like \
        --rounds 5 --layouts 1x2,2x1

and with ``--timeline`` each distributed call's steps (the client's tests, scattering X, the
tasks, the merge) with their wall and the client's and workers' CPU seconds.

``--retain-memory`` runs this process and the workers with
``recforge.distributed.cluster.RETAINED_MEMORY_ENVIRON`` (freed memory kept for the next call
instead of being returned to the system; see :mod:`recforge.distributed.cluster`): both sides of
the ratio then reuse their warm pages, where by default the workers (Dask's
``MALLOC_TRIM_THRESHOLD_=65536``, tasks in executor threads) map fresh pages for every call.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness import kernel_inputs
from recforge.bench.distributed import (K, cpu_seconds, memory_settings, parse_layouts, run_distributed_benchmark,
                                        same_csr, shipping)
from recforge.bench.distributed import item_matrix as items_by_users

SIZES = ("tiny", "small", "medium", "ml20m-like")


def item_matrix(size: str, users_fraction: float = 1.0):
    """The size's items x users matrix (sorted indices); with ``users_fraction`` < 1 only a seeded
    random share of the users (columns): the same items and result size, about that share of the
    kernel's work (quicker rounds on a busy machine)."""
    X = items_by_users(kernel_inputs(size).R)
    if users_fraction < 1.0:
        keep = np.sort(np.random.default_rng(0).choice(X.shape[1], int(X.shape[1] * users_fraction), replace=False))
        X = X[:, keep].tocsr()
        X.sort_indices()
    return X


@pytest.mark.parametrize("layout", ["single-process", "dask-1xT", "dask-Tx1"])
def test_distributed_similarity_topk(benchmark, size, layout, threads):
    pytest.importorskip("distributed")
    from recforge.kernels import similarity_topk

    X = kernel_inputs(size).R.T.tocsr()           # items x users: item-item similarity
    X.sort_indices()
    want = similarity_topk(X, K, metric="cosine", num_threads=threads)
    benchmark.group = f"similarity_topk distributed {size}"
    if layout == "single-process":
        benchmark.extra_info.update(agreement="reference")
        benchmark(lambda: similarity_topk(X, K, metric="cosine", num_threads=threads))
        return
    from distributed import Client, LocalCluster

    import recforge.distributed as rd

    workers, per_worker = (1, threads) if layout == "dask-1xT" else (threads, 1)
    with LocalCluster(n_workers=workers, threads_per_worker=per_worker, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        def run():
            return rd.similarity_topk(X, K, metric="cosine", client=client)

        assert same_csr(run(), want), f"{layout}: the result differs from the single-process kernel"
        benchmark.extra_info.update(agreement="identical to the single-process CSR", workers=workers,
                                    threads_per_worker=per_worker, **shipping(X, workers))
        benchmark(run)


def interleaved(size: str, rounds: int, layouts: list[tuple[int, int]], threads: int = 2, users_fraction: float = 1.0,
                retain_memory: bool = False) -> None:
    """Script mode: single-process and distributed calls alternated round by round in one
    process (a noisy machine slows both alike, so each round's ratio is meaningful), with the
    workers' compute time per task from Dask's task stream
    (:func:`recforge.bench.distributed.run_distributed_benchmark`)."""
    import os

    X = item_matrix(size, users_fraction)
    print(f"{size} (users fraction {users_fraction}): X {X.shape}, {X.nnz} entries; load {os.getloadavg()}; "
          f"{'retained memory' if retain_memory else 'default memory settings'}", flush=True)

    def on_round(row, one):
        if len(row["rounds"]) == 1:
            print(f"{row['layout']}: " + str({key: row[key] for key in ("path", "tasks", "scattered_bytes_per_worker",
                                                                          "task_bytes", "agrees")}), flush=True)
        print(f"{row['layout']} round {len(row['rounds']) - 1}: single {one['single_s']:.2f} s "
              f"({one['single_cpu_s']:.2f} CPU s), distributed {one['distributed_s']:.2f} s "
              f"({one['distributed_cpu_s']:.2f} CPU s, client and workers), ratio {one['ratio']:.3f} "
              f"(CPU {one['cpu_ratio']:.3f}); task compute {', '.join(f'{c:.2f}' for c in one['task_compute_s'])} s; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)

    report = run_distributed_benchmark(X, layouts, rounds, threads, retain_memory, on_round)
    for row in report["layouts"]:
        assert row["agrees"] == "identical", f"{row['layout']}: differs from the kernel"
        print(f"{row['layout']}: median ratio {row['median_ratio']:.3f} (CPU time {row['median_cpu_ratio']:.3f}) "
              f"over {rounds} rounds", flush=True)


def timeline(size: str, rounds: int, layouts: list[tuple[int, int]], threads: int = 2, users_fraction: float = 1.0,
             retain_memory: bool = False) -> None:
    """Script mode ``--timeline``: rd.similarity_topk(X, K) on a warmed cluster with each step
    timed (wall, this process's CPU seconds: client, scheduler and nannies of a LocalCluster; the
    workers' CPU seconds), next to the in-process kernel's wall and CPU seconds in the same round.
    Steps: the client's half-product test, cutting the shards, the job token, scattering X, the
    tasks (submit to gather; inside: the workers' compute from Dask's task stream, the rest is
    dispatch and the result's transfer), merging the shards, and the rest of the call (argument
    checks, validating X). Timing the steps adds round trips; the ratio runs do not."""
    import os
    import time
    from contextlib import ExitStack
    from unittest import mock

    from distributed import Client, LocalCluster, get_task_stream

    import recforge.distributed as rd
    import recforge.distributed.half_product as hp
    import recforge.distributed.similarity as rs
    from recforge.kernels import similarity_topk

    X = item_matrix(size, users_fraction)
    want = similarity_topk(X, K, num_threads=threads)
    print(f"{size} (users fraction {users_fraction}): X {X.shape}, {X.nnz} entries; load {os.getloadavg()}",
          flush=True)

    def clock(client):
        return time.perf_counter(), cpu_seconds(None), cpu_seconds(client) - cpu_seconds(None)

    for workers, per_worker in layouts:
        layout = f"{workers}x{per_worker}"
        with memory_settings(retain_memory), \
                LocalCluster(n_workers=workers, threads_per_worker=per_worker, processes=True,
                             dashboard_address=":0") as cluster, Client(cluster) as client:
            assert same_csr(rd.similarity_topk(X, K, client=client), want), f"{layout}: differs from the kernel"
            for r in range(rounds):
                start, cpu = time.perf_counter(), cpu_seconds(None)
                similarity_topk(X, K, num_threads=threads)
                single, single_cpu = time.perf_counter() - start, cpu_seconds(None) - cpu
                steps: list[tuple[str, float, float, float]] = []

                def timed(name, fn):
                    def step(*args, **kwargs):
                        before = clock(client)
                        out = fn(*args, **kwargs)
                        after = clock(client)
                        steps.append((name, *(a - b for a, b in zip(after, before))))
                        return out
                    return step

                with ExitStack() as patches, get_task_stream(client=client) as stream:
                    for module, name in ((rs, "half_product_pays"), (hp, "pair_ranges"), (hp, "job_token"),
                                         (hp, "scatter_everywhere"), (hp, "run_blocks"),
                                         (hp, "merge_row_candidates"), (rs, "row_blocks"), (rs, "run_blocks"),
                                         (rs, "_scattered_operand")):
                        patches.enter_context(mock.patch.object(module, name, timed(name, getattr(module, name))))
                    before = clock(client)
                    rd.similarity_topk(X, K, client=client)
                    after = clock(client)
                total = [a - b for a, b in zip(after, before)]
                compute = sum(s["stop"] - s["start"] for t in stream.data for s in t["startstops"]
                              if s["action"] == "compute")
                rest = [t - sum(step[i + 1] for step in steps) for i, t in enumerate(total)]
                print(f"{layout} round {r}: in-process kernel {single:.2f} s, {single_cpu:.2f} CPU s; "
                      f"distributed {total[0]:.2f} s, client {total[1]:.2f} + workers {total[2]:.2f} CPU s "
                      f"(CPU ratio {(total[1] + total[2]) / single_cpu:.3f}); load {os.getloadavg()[0]:.1f}", flush=True)
                for name, wall, client_cpu, worker_cpu in steps + [("rest of the call", *rest)]:
                    print(f"    {name:24s} {wall:7.3f} s  client {client_cpu:6.3f}  workers {worker_cpu:6.3f} CPU s",
                          flush=True)
                print(f"    tasks' compute (task stream, summed) {compute:.3f} s", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=interleaved.__doc__)
    parser.add_argument("size", choices=SIZES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layouts", default="1x2,2x1", help="workers x threads, comma-separated")
    parser.add_argument("--threads", type=int, default=2, help="the single-process kernel's threads")
    parser.add_argument("--users-fraction", type=float, default=1.0,
                        help="keep this seeded random share of the users (quicker rounds; 1: all)")
    parser.add_argument("--timeline", action="store_true", help=timeline.__doc__.split(".")[0])
    parser.add_argument("--retain-memory", action="store_true",
                        help="this process and the workers keep freed memory (RETAINED_MEMORY_ENVIRON)")
    args = parser.parse_args()
    if args.retain_memory:
        import os
        import sys

        from recforge.distributed.cluster import RETAINED_MEMORY_ENVIRON

        if any(os.environ.get(name) != value for name, value in RETAINED_MEMORY_ENVIRON.items()):
            # glibc reads these when the process starts: start it again with them
            os.execvpe(sys.executable, [sys.executable, "-m", "benchmarks.bench_distributed", *sys.argv[1:]],
                       {**os.environ, **RETAINED_MEMORY_ENVIRON})
    (timeline if args.timeline else interleaved)(args.size, args.rounds, parse_layouts(args.layouts), args.threads,
                                                 args.users_fraction, args.retain_memory)
