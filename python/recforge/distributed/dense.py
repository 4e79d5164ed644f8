"""dense_topk on a Dask cluster: query rows in blocks, the candidate vectors scattered once."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.distributed._worker import kernel_threads
from recforge.distributed.blocks import job_token, row_blocks, run_blocks, run_job, scatter_everywhere
from recforge.distributed.cluster import resolve_client
from recforge.distributed.parquet import ParquetOutput, parse_output, write_partition
from recforge.distributed.shipping import landed
from recforge.kernels import _validation as v


def _block(Q_block: np.ndarray, V: np.ndarray, start: int, k: int, exclude_block: Any, metric: str,
           num_threads: int | None, folder: str | None):
    from recforge.kernels import dense_topk

    V = landed(V)
    idx, scores = dense_topk(Q_block, V, k, exclude=exclude_block, metric=metric,
                             num_threads=kernel_threads(num_threads))
    if folder is None:
        return idx, scores
    rows = np.repeat(np.arange(start, start + idx.shape[0], dtype=np.int64), idx.shape[1])
    rank = np.tile(np.arange(idx.shape[1], dtype=np.int32), idx.shape[0])
    return write_partition(folder, start, {"row": rows, "rank": rank, "item": idx.reshape(-1),
                                           "score": scores.reshape(-1)})


def dense_topk(Q: Any, V: Any, k: int, *, exclude: Any = None, metric: str = "dot", client: Any = None,
               block_rows: int | None = None, output: str | None = None, num_threads: int | None = None):
    """:func:`recforge.kernels.dense_topk` with the rows of Q in blocks over a cluster.

    ``Q``: a numpy array, or a ``dask.array`` (its row blocks are computed on the workers and
    never gathered). ``V`` is validated and scattered to every worker once. Returns
    ``(indices, scores)`` identical to the single-process kernel, or a :class:`ParquetOutput`
    (columns ``row``, ``rank``, ``item``, ``score``) with ``output="parquet://FOLDER"``.
    """
    from recforge.kernels import dense_topk as kernel

    client = resolve_client(client)
    k = v.check_positive_int(k, "k")
    V = v.as_dense(V, "V")
    lazy = hasattr(Q, "dask") and hasattr(Q, "chunks")
    if lazy:
        if Q.ndim != 2 or Q.shape[1] != V.shape[1]:
            raise ValueError(f"Q must be 2-D with {V.shape[1]} columns, got shape {Q.shape}")
        if Q.chunks[1] != (Q.shape[1],):
            Q = Q.rechunk({1: -1})
        m = Q.shape[0]
    else:
        Q = v.as_dense(Q, "Q")
        kernel(Q[:1], V, 1, metric=metric, num_threads=1)        # every argument check, once, here
        m = Q.shape[0]
    if exclude is not None:
        exclude = v.as_pattern(exclude, "exclude", (m, V.shape[0]))
    folder = parse_output(output)
    if lazy:
        offsets = np.r_[0, np.cumsum(Q.chunks[0])]
        blocks = [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:])]
        parts = Q.to_delayed().reshape(-1)
        row_of = {b.start: parts[i] for i, b in enumerate(blocks)}
        token = job_token("dense", Q.name, V, k, metric, exclude, output)
        query = lambda b: client.compute(row_of[b.start])  # noqa: E731  (a future on the workers)
    else:
        blocks = row_blocks(m, block_rows, len(client.nthreads()))
        token = job_token("dense", Q, V, k, metric, exclude, output)
        query = lambda b: Q[b]  # noqa: E731

    def attempt():
        scattered = scatter_everywhere(client, V)
        return run_blocks(client, "dense", token, _block, blocks,
                          lambda b: (query(b), scattered, b.start, k, None if exclude is None else exclude[b]),
                          metric=metric, num_threads=num_threads, folder=None if folder is None else str(folder))

    results = run_job(attempt)
    if folder is not None:
        return ParquetOutput(folder, [type(folder)(r) for r in results], m)
    if not results:
        return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
    return np.vstack([r[0] for r in results]), np.vstack([r[1] for r in results])


