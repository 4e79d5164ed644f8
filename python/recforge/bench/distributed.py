"""The distributed benchmark behind ``recforge bench --backend dask`` and
``benchmarks/bench_distributed.py``: :func:`recforge.distributed.similarity_topk` (item-item
cosine, k = 50, ``Y=None``) on Dask LocalClusters of W worker processes x T threads, against the
single-process kernel with the same total threads, in this process on the same matrix.

Per layout: the cluster starts (inside :func:`recforge.distributed.cluster.retained_memory` when
asked), one distributed call is checked bit for bit against the single-process CSR (and warms the
cluster), then ``rounds`` rounds each time one single-process call and one distributed call,
alternated so a noisy machine slows both alike. A round's ratio is

.. math:: r = t_\\mathrm{distributed} / t_\\mathrm{single}

(wall clock; the CPU ratio divides CPU seconds: this process, which holds a LocalCluster's
scheduler, plus the workers'), and the layout reports the median over rounds. Timed calls
include the client's checks, scattering X (it is not kept on the workers between calls), the
tasks and gathering (and merging) their results.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

#: neighbours per item
K = 50


def parse_layouts(text: str) -> list[tuple[int, int]]:
    """``"1x2,2x1"`` -> [(1, 2), (2, 1)]: workers x threads per worker, each at least 1."""
    layouts = []
    for part in (p.strip() for p in text.split(",")):
        try:
            workers, threads = (int(x) for x in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"a layout is WORKERSxTHREADS (e.g. 1x2,2x1), got {part!r}") from None
        if workers < 1 or threads < 1:
            raise ValueError(f"a layout needs at least 1 worker and 1 thread, got {part!r}")
        layouts.append((workers, threads))
    if not layouts:
        raise ValueError("no layout given")
    return layouts


def item_matrix(R: sp.csr_matrix) -> sp.csr_matrix:
    """The items x users matrix of interactions R (users x items), indices sorted."""
    X = sp.csr_matrix(R).T.tocsr()
    X.sort_indices()
    return X


def csr_bytes(X: sp.csr_matrix) -> int:
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def shipping(X: sp.csr_matrix, workers: int) -> dict[str, Any]:
    """What ``rd.similarity_topk(X, K)`` does on ``workers`` workers: its path, its tasks, the bytes
    scattered to each worker and the largest task's own bytes (its arguments)."""
    from recforge.distributed.blocks import row_blocks
    from recforge.distributed.candidates import prepared_nbytes
    from recforge.distributed.half_product import half_product_pays, pair_ranges
    from recforge.distributed.similarity import lean
    from recforge.kernels import prepare_candidates

    if workers <= 1 or half_product_pays(X):      # as recforge.distributed.similarity_topk decides
        ranges = pair_ranges(X, workers)
        return dict(path="half-product shards" if len(ranges) > 1 else "one call on the worker", tasks=len(ranges),
                    scattered_bytes_per_worker=csr_bytes(X),
                    task_bytes=3 * np.dtype(np.int64).itemsize)      # k and the row range: three integers
    blocks = row_blocks(X.shape[0], None, workers)
    operand = prepared_nbytes(lean(prepare_candidates(X)))      # the arrays a worker receives
    return dict(path="row blocks", tasks=len(blocks), scattered_bytes_per_worker=operand,
                task_bytes=max(csr_bytes(X[b]) for b in blocks))


def memory_settings(retain_memory: bool):
    """Where a benchmark's LocalClusters start: under Dask's defaults, or inside
    :func:`recforge.distributed.cluster.retained_memory`."""
    from recforge.distributed.cluster import retained_memory

    return retained_memory() if retain_memory else nullcontext()


def same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


def cpu_seconds(client: Any = None) -> float:
    """CPU seconds used so far by this process (with a LocalCluster's scheduler) and the workers."""
    import resource

    def used() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    return used() + (0.0 if client is None else sum(client.run(used).values()))


def run_distributed_benchmark(X: sp.csr_matrix, layouts: list[tuple[int, int]], rounds: int = 3, threads: int = 2,
                              retain_memory: bool = False,
                              on_round: Callable[[dict, dict], None] | None = None) -> dict[str, Any]:
    """The benchmark on X (items x users) for each (workers, threads per worker) layout; the
    single-process kernel runs with ``threads`` threads. ``on_round(layout_row, round_row)`` is
    called after every round (progress). Returns a JSON-ready dict."""
    from distributed import Client, LocalCluster, get_task_stream

    import recforge.distributed as rd
    from recforge.kernels import similarity_topk

    want = similarity_topk(X, K, num_threads=threads)
    rows = []
    for workers, per_worker in layouts:
        row: dict[str, Any] = dict(layout=f"{workers}x{per_worker}", workers=workers, threads_per_worker=per_worker,
                                   **shipping(X, workers), rounds=[])
        with memory_settings(retain_memory), \
                LocalCluster(n_workers=workers, threads_per_worker=per_worker, processes=True,
                             dashboard_address=":0") as cluster, Client(cluster) as client:
            row["agrees"] = "identical" if same_csr(rd.similarity_topk(X, K, client=client), want) else "NO"
            for _ in range(rounds):
                start, cpu = time.perf_counter(), cpu_seconds()
                similarity_topk(X, K, num_threads=threads)
                single, single_cpu = time.perf_counter() - start, cpu_seconds() - cpu
                with get_task_stream(client=client) as stream:
                    start, cpu = time.perf_counter(), cpu_seconds(client)
                    rd.similarity_topk(X, K, client=client)
                    dist, dist_cpu = time.perf_counter() - start, cpu_seconds(client) - cpu
                compute = [sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute")
                           for t in stream.data]
                one = dict(single_s=single, single_cpu_s=single_cpu, distributed_s=dist, distributed_cpu_s=dist_cpu,
                           ratio=dist / single, cpu_ratio=dist_cpu / single_cpu, task_compute_s=compute)
                row["rounds"].append(one)
                if on_round is not None:
                    on_round(row, one)
        row["median_ratio"] = float(np.median([r["ratio"] for r in row["rounds"]])) if rounds else None
        row["median_cpu_ratio"] = float(np.median([r["cpu_ratio"] for r in row["rounds"]])) if rounds else None
        rows.append(row)
    return dict(matrix=dict(rows=X.shape[0], cols=X.shape[1], nnz=int(X.nnz)), k=K, threads=threads, rounds=rounds,
                memory="retained (recforge.distributed.cluster.retained_memory)" if retain_memory
                else "Dask's worker defaults", layouts=rows)
