"""similarity_topk on a Dask cluster: the query rows in blocks, the candidates scattered once."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.distributed._worker import kernel_threads
from recforge.distributed.blocks import job_token, row_blocks, run_blocks
from recforge.distributed.cluster import resolve_client
from recforge.distributed.parquet import ParquetOutput, csr_rows_columns, parse_output, write_partition
from recforge.kernels import _validation as v


def _block(X_block: sp.csr_matrix, candidates: sp.csr_matrix, start: int, k: int, symmetric: bool,
           exclude_block: sp.csr_matrix | None, kernel_args: dict, folder: str | None):
    from recforge.kernels import similarity_topk

    m, n = X_block.shape[0], candidates.shape[0]
    exclude = exclude_block
    if symmetric:
        own = sp.csr_matrix((np.ones(m, np.float32), np.arange(start, start + m), np.arange(m + 1)), shape=(m, n))
        exclude = own if exclude is None else (own + exclude).tocsr()
    args = dict(kernel_args)
    args["num_threads"] = kernel_threads(args.get("num_threads"))
    S = similarity_topk(X_block, k, candidates, exclude=exclude, **args)
    if folder is None:
        return S
    return write_partition(folder, start, csr_rows_columns(S, start))


def similarity_topk(X: Any, k: int, Y: Any = None, *, client: Any = None, block_rows: int | None = None,
                    output: str | None = None, exclude: Any = None, **kernel_args: Any):
    """:func:`recforge.kernels.similarity_topk` with the rows of X split into blocks over a cluster.

    Returns the same m x n CSR, bit for bit, as the single-process kernel (ties, exclusions and
    all), or with ``output="parquet://FOLDER"`` writes one Parquet file per block (columns
    ``row``, ``neighbour``, ``score``) and returns a :class:`ParquetOutput` instead of gathering.
    Y (X itself when None) is validated and prepared once
    (:func:`recforge.kernels.prepare_candidates`: reweighted, transposed, narrowed) and scattered
    to every worker once; each task ships only its block of X and transposes nothing.
    ``kernel_args``: ``metric``, ``shrink``, ``min_support``, ``num_threads`` (default: each
    worker's thread count). ``metric="adjusted_cosine"`` with ``Y=None`` centres the columns over
    X as a whole, which a block cannot see: centre X yourself and use ``"cosine"``.
    """
    from recforge.kernels import prepare_candidates
    from recforge.kernels import similarity_topk as kernel
    from recforge.kernels.prepared import JOINT_METRICS

    client = resolve_client(client)
    k = v.check_positive_int(k, "k")
    X = v.as_csr(X, "X")
    symmetric = Y is None
    if symmetric and kernel_args.get("metric") == "adjusted_cosine":
        raise ValueError("adjusted_cosine with Y=None centres columns over all of X; distributed blocks "
                         "cannot: centre X's columns first and pass metric='cosine'")
    candidates = X if symmetric else v.as_csr(Y, "Y")
    kernel(X[:1], 1, candidates, **{**kernel_args, "num_threads": 1})   # every argument check, once, here
    if exclude is not None:
        exclude = v.as_pattern(exclude, "exclude", (X.shape[0], candidates.shape[0]))
    folder = parse_output(output)
    blocks = row_blocks(X.shape[0], block_rows, len(client.nthreads()))
    token = job_token("similarity", X, candidates, k, sorted(kernel_args.items()), exclude, output)
    metric = kernel_args.get("metric", "cosine")
    # adjusted_cosine takes statistics from each block with Y, so it ships the matrix itself
    operand = candidates if metric in JOINT_METRICS else prepare_candidates(
        candidates, metric=metric, num_threads=kernel_args.get("num_threads") or 0)
    scattered = client.scatter(operand, broadcast=True, hash=True)
    results = run_blocks(
        client, "similarity", token, _block, blocks,
        lambda b: (X[b], scattered, b.start, k, symmetric, None if exclude is None else exclude[b]),
        kernel_args=kernel_args, folder=None if folder is None else str(folder))
    if folder is not None:
        return ParquetOutput(folder, [type(folder)(r) for r in results], X.shape[0])
    if not results:
        return sp.csr_matrix((X.shape[0], candidates.shape[0]), dtype=X.dtype)
    return sp.vstack(results, format="csr")
