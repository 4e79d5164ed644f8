"""similarity_topk on a Dask cluster: the query rows in blocks, the candidates scattered once."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.distributed._worker import kernel_threads
from recforge.distributed.blocks import job_token, row_blocks, run_blocks, run_job, scatter_everywhere
from recforge.distributed.candidates import ScatteredCandidates
from recforge.distributed.cluster import resolve_client
from recforge.distributed.half_product import column_counts, half_product_pays, sharded_half_product
from recforge.distributed.parquet import ParquetOutput, csr_rows_columns, parse_output, write_partition
from recforge.distributed.shipping import landed
from recforge.kernels import _validation as v


def _block(X_block: sp.csr_matrix, candidates: Any, start: int, k: int, symmetric: bool,
           exclude_block: sp.csr_matrix | None, kernel_args: dict, folder: str | None):
    from recforge.kernels import similarity_topk

    candidates = landed(candidates)
    m, n = X_block.shape[0], candidates.shape[0]
    exclude = exclude_block
    if symmetric:
        own = sp.csr_matrix((np.ones(m, np.float32), np.arange(start, start + m), np.arange(m + 1)), shape=(m, n))
        exclude = own if exclude is None else (own + exclude).tocsr()
    args = dict(kernel_args)
    args["num_threads"] = kernel_threads(args.get("num_threads"))
    S = similarity_topk(X_block, k, candidates, exclude=exclude, check_input=False, **args)
    if folder is None:
        return S
    return write_partition(folder, start, csr_rows_columns(S, start))


def similarity_topk(X: Any, k: int, Y: Any = None, *, client: Any = None, block_rows: int | None = None,
                    output: str | None = None, exclude: Any = None, half_product_shards: bool = True,
                    **kernel_args: Any):
    """:func:`recforge.kernels.similarity_topk` with the rows of X split over a cluster.

    Returns the same m x n CSR, bit for bit, as the single-process kernel (ties, exclusions and
    all), or with ``output="parquet://FOLDER"`` writes one Parquet file per block (columns
    ``row``, ``neighbour``, ``score``) and returns a :class:`ParquetOutput` instead of gathering.
    ``kernel_args``: ``metric``, ``shrink``, ``min_support``, ``backend``, ``num_threads`` (default:
    each worker's thread count). ``metric="adjusted_cosine"`` with ``Y=None`` centres the columns
    over X as a whole, which a block cannot see: centre X yourself and use ``"cosine"``.

    ``Y`` given: the rows of X in blocks (``block_rows`` each; default about four per worker);
    Y is prepared once (:func:`recforge.kernels.prepare_candidates`: reweighted, transposed,
    narrowed) and scattered to every worker once; each task ships only its block of X. ``Y`` may
    also be a :class:`~recforge.distributed.ScatteredCandidates` from
    :func:`recforge.distributed.prepare_candidates`, already on the workers (nothing is
    scattered), or a :class:`~recforge.kernels.PreparedCandidates`.

    ``Y=None`` where the kernel forms each pair once (the half product) and no ``output``
    (``half_product_shards=True``, the default): X is scattered to every worker once and each
    worker takes one row range of about equal pair work (``block_rows`` is not used), forming the
    pairs (i, j > i) of its range (``similarity_topk(pair_rows=...)``); the rows' candidates are
    merged by the kernel's top-k rule, which gives the single-process result bit for bit. A
    cluster of one worker runs the single-process call itself on it, whichever product the kernel
    then picks (nor is the client's half-product test run). Otherwise (or
    ``half_product_shards=False``) the rows are blocked as for a given Y, which forms each pair
    twice.

    The client validates X (and ``exclude``) once; the workers' kernel calls skip that O(nnz)
    structural check (``check_input=False``) on what the client checked.
    """
    from recforge.kernels import PreparedCandidates

    client = resolve_client(client)
    k = v.check_positive_int(k, "k")
    X = v.as_csr(X, "X")
    symmetric = Y is None
    metric = kernel_args.get("metric", "cosine")
    if symmetric and metric == "adjusted_cosine":
        raise ValueError("adjusted_cosine with Y=None centres columns over all of X; distributed blocks "
                         "cannot: centre X's columns first and pass metric='cosine'")
    handle = Y if isinstance(Y, ScatteredCandidates) else None
    if handle is not None and handle.client is not client:
        raise ValueError("Y was scattered with another client: prepare it with this one")
    prepared = handle.prepared if handle is not None else Y if isinstance(Y, PreparedCandidates) else None
    if prepared is not None and prepared.metric != metric:
        raise ValueError(f"Y was prepared for metric={prepared.metric!r}, but metric={metric!r} was asked")
    candidates = X if symmetric else prepared.source if prepared is not None else v.as_csr(Y, "Y")
    check_arguments(X, candidates, kernel_args)
    if exclude is not None:
        exclude = v.as_pattern(exclude, "exclude", (X.shape[0], candidates.shape[0]))
    folder = parse_output(output)
    workers = len(client.nthreads())
    if half_product_shards and symmetric and folder is None:
        df = None if workers <= 1 else column_counts(X)      # shared by the test and the range cuts
        if workers <= 1 or half_product_pays(X, df):
            return sharded_half_product(client, X, k, exclude, kernel_args, df)
    blocks = row_blocks(X.shape[0], block_rows, workers)
    token = job_token("similarity", X, handle.future().key if handle is not None else candidates, k,
                      sorted(kernel_args.items()), exclude, output)

    def attempt():
        operand = _scattered_operand(client, X, candidates, prepared, handle, kernel_args)
        return run_blocks(client, "similarity", token, _block, blocks,
                          lambda b: (X[b], operand, b.start, k, symmetric, None if exclude is None else exclude[b]),
                          kernel_args=kernel_args, folder=None if folder is None else str(folder))

    results = run_job(attempt)
    if folder is not None:
        return ParquetOutput(folder, [type(folder)(r) for r in results], X.shape[0])
    if not results:
        return sp.csr_matrix((X.shape[0], candidates.shape[0]), dtype=X.dtype)
    return sp.vstack(results, format="csr")   # all CSR: scipy concatenates the arrays once


def check_arguments(X: sp.csr_matrix, candidates: sp.csr_matrix, kernel_args: dict) -> None:
    """The kernel's argument checks, here and once, on a 1 x 1 problem (not on X and Y: their
    O(nnz) preparation happens once on the workers), plus the checks that read the data."""
    from recforge.kernels import similarity_topk as kernel
    from recforge.kernels.similarity import check_weightable

    if "pair_rows" in kernel_args:
        raise ValueError("pair_rows is how recforge.distributed shards the half product; it is not an argument")
    if kernel_args.get("num_threads") is not None:
        v.check_int(kernel_args["num_threads"], "num_threads", 0)
    one = sp.csr_matrix(np.ones((1, 1), dtype=X.dtype))
    kernel(one, 1, one, **{**kernel_args, "num_threads": 1})
    if X.shape[1] != candidates.shape[1]:
        raise ValueError(f"X and Y must have the same number of columns, got {X.shape[1]} and {candidates.shape[1]}")
    if kernel_args.get("metric") in ("tfidf", "bm25"):
        check_weightable(kernel_args["metric"], X, "X")
        check_weightable(kernel_args["metric"], candidates, "Y")


class _SourceNotShipped:
    """Stands in for a prepared operand's source matrix where the client made sure it is not read."""

    def __repr__(self) -> str:
        return "<Y's source matrix, not shipped: recforge.distributed decided the prepared path>"


def lean(prepared: Any) -> Any:
    """``prepared`` without its source matrix: the bytes a worker needs for the prepared path."""
    shipped = copy.copy(prepared)
    shipped.source = _SourceNotShipped()
    return shipped


def needs_source(prepared: Any, X: sp.csr_matrix, kernel_args: dict) -> bool:
    """Whether the kernel would take the plain path on the source for these X rows (see
    :func:`recforge.kernels.prepared.similarity_topk_prepared`)."""
    from recforge.kernels import similarity as s

    backend = kernel_args.get("backend", "auto")
    if not prepared.prepared or not (backend == "cpu" or backend == "auto" and _cpu_by_default()):
        return True
    if v.common_value_dtype(X.dtype, prepared.dtype) != prepared.dtype:
        return True
    if X.dtype == np.float32 and prepared.kind == s.Kind.dot:
        rows = X if prepared.idf is None else s.weigh_rows(prepared.metric, X, prepared.idf, prepared.avg_len)
        return s.bound_exceeds_float32(s.overflow_parts(rows), prepared.overflow_parts)
    return False


def _cpu_by_default() -> bool:
    """Whether backend="auto" means the CPU here (a worker whose environment says otherwise meets
    the stand-in source and raises a TypeError naming Y, never a silent result)."""
    import os

    return os.environ.get("RECFORGE_BACKEND", "").strip().lower() in ("", "auto", "cpu")


def _scattered_operand(client: Any, X: sp.csr_matrix, candidates: sp.csr_matrix, prepared: Any,
                       handle: ScatteredCandidates | None, kernel_args: dict) -> Any:
    """The candidate operand on every worker: the handle's, or prepared here and scattered once
    (without its source matrix when the prepared path is certain: a quarter of the bytes for
    binary interactions). ``adjusted_cosine`` needs X with Y: the matrix itself is shipped."""
    from recforge.kernels import prepare_candidates
    from recforge.kernels.prepared import JOINT_METRICS

    metric = kernel_args.get("metric", "cosine")
    if prepared is None and metric in JOINT_METRICS:
        return scatter_everywhere(client, candidates)
    if prepared is None:
        prepared = prepare_candidates(candidates, metric=metric, num_threads=kernel_args.get("num_threads") or 0,
                                      check_input=False)
    if needs_source(prepared, X, kernel_args):
        return scatter_everywhere(client, prepared)
    if handle is not None:
        return handle.future()
    return scatter_everywhere(client, lean(prepared))

