"""recforge.distributed.similarity_topk on a Dask LocalCluster against the single-process kernel.

Group "similarity_topk distributed <size>": item-item cosine, k=50, on the size's users x items
matrix (recforge.bench inputs; ``ml20m-like`` is the 20M-interaction matrix) computed by

* ``single-process``: ``recforge.kernels.similarity_topk`` with ``--bench-threads`` threads;
* ``dask-1xT``: a LocalCluster of 1 worker process x T threads (the overhead of distribution);
* ``dask-Tx1``: T worker processes x 1 thread (the scaling across processes).

Checked before timing: every distributed result equals the single-process CSR bit for bit.
Starting the cluster is not timed; the timed call includes scattering the candidate matrix,
shipping each task's block of rows and gathering the blocks. extra_info holds the block count
and the bytes scattered.

    pytest benchmarks/bench_distributed.py --benchmark-only --bench-sizes ml20m-like
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness import kernel_inputs

SIZES = ("tiny", "small", "medium", "ml20m-like")
K = 50


def same_csr(a, b) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


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
    from recforge.distributed.blocks import row_blocks

    workers, per_worker = (1, threads) if layout == "dask-1xT" else (threads, 1)
    with LocalCluster(n_workers=workers, threads_per_worker=per_worker, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        def run():
            return rd.similarity_topk(X, K, metric="cosine", client=client)

        assert same_csr(run(), want), f"{layout}: the result differs from the single-process kernel"
        scattered = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
        benchmark.extra_info.update(agreement="identical to the single-process CSR", workers=workers,
                                    threads_per_worker=per_worker, blocks=len(row_blocks(X.shape[0], None, workers)),
                                    scattered_mib_per_worker=scattered / 2**20)
        benchmark(run)
