"""Y=None on a cluster as the kernel's half product: each pair formed once, in row-range shards.

The single-process kernel forms each pair (i, j) of rows once and offers it to both rows when that
pays (:func:`half_product_pays`). A row-blocked distributed job would form every pair twice, so
``Y=None`` runs instead as shards of that half product: shard ``[r0, r1)`` forms the pairs
(i, j > i) with ``r0 <= i < r1`` (``similarity_topk(pair_rows=...)``) and every row keeps its best k
of them; merging the rows of all shards by the kernel's top-k rule gives the single-process result
bit for bit. A single shard is the plain kernel call itself.

Everything here reads X's pattern only in O(nnz) numpy passes (no transpose on the client).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.backend import resolve_num_threads
from recforge.distributed._worker import kernel_threads
from recforge.distributed.blocks import job_token, run_blocks, run_job, scatter_everywhere
from recforge.distributed.shipping import landed
from recforge.kernels.similarity import _half_product_pays

#: row-range grid on which pair_ranges evaluates the half-product work before refining each cut
WORK_GRID = 64


def column_counts(X: sp.csr_matrix) -> np.ndarray:
    """X's entries per column (one pass over its indices, no transpose)."""
    return np.bincount(X.indices[:X.nnz], minlength=X.shape[1])


def half_product_pays(X: sp.csr_matrix, df: np.ndarray | None = None) -> bool:
    """Whether the kernel would take the half product for ``similarity_topk(X, k)``: its own rule
    (``recforge.kernels.similarity._half_product_pays``), with the column counts ``df``
    (:func:`column_counts`, computed when not given) instead of a transpose."""
    if X.nnz == 0:
        return False
    return bool(_half_product_pays(X, column_counts(X) if df is None else df, resolve_num_threads(0)))


def pair_ranges(X: sp.csr_matrix, shards: int, df: np.ndarray | None = None) -> list[slice]:
    r"""Row ranges of X with about equal half-product work, one per shard.

    Row i's work is :math:`\sum_{c \in x_i} |\{j > i : c \in x_j\}|`, the multiply-adds of its
    pairs (i, j > i). Rows ``[0, r)`` together do
    :math:`W(r) = \sum_c n_c \mathrm{df}_c - n_c (n_c + 1) / 2` with :math:`n_c` the entries of
    column c in those rows. Cut s is the first r with :math:`W(r + 1) > s\,W(m) / S`: W is
    evaluated on a grid of row boundaries, then row by row inside the grid cell holding the cut.
    """
    m, d = X.shape
    if shards <= 1 or m == 0 or X.nnz == 0:
        return [slice(0, m)]
    indices, indptr = X.indices[:X.nnz], X.indptr
    df = (column_counts(X) if df is None else df).astype(np.float64)
    grid = np.unique(np.linspace(0, m, min(m, WORK_GRID) + 1).astype(np.int64))
    counts = np.zeros(d)
    work_at = np.zeros(grid.size)     # W at each grid row
    for g in range(1, grid.size):
        counts += np.bincount(indices[indptr[grid[g - 1]]:indptr[grid[g]]], minlength=d)
        work_at[g] = (counts * (df - (counts + 1) / 2)).sum()     # no BLAS call: a pool per call costs more
    targets = work_at[-1] * np.arange(1, shards) / shards
    cuts = []
    for target in targets:
        cell = int(np.searchsorted(work_at, target, side="right")) - 1     # W(grid[cell]) <= target
        start = int(grid[cell])
        counts_at = np.bincount(indices[:indptr[start]], minlength=d).astype(np.float64)
        work, r = work_at[cell], start
        while r < m:                                        # W(r + 1) = W(r) + row r's work
            cols = indices[indptr[r]:indptr[r + 1]]
            work += (df[cols] - counts_at[cols] - 1).sum()
            counts_at[cols] += 1
            if work > target:
                break
            r += 1
        cuts.append(r)
    bounds = np.unique(np.r_[0, cuts, m])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def merge_row_candidates(parts: list[sp.csr_matrix], k: int) -> sp.csr_matrix:
    """Per row, the best k of the parts' candidates: best first, ties the smaller column first.

    Each pair lives in one part (the shard of its smaller row), so this is the top-k rule of
    :func:`recforge.kernels.similarity_topk` applied to the union of the candidates.
    """
    m, n = parts[0].shape
    rows = np.concatenate([np.repeat(np.arange(m), np.diff(P.indptr)) for P in parts])
    cols = np.concatenate([P.indices for P in parts])
    scores = np.concatenate([P.data for P in parts])
    key = packed_order_key(rows, scores, cols, m, n)
    order = np.argsort(key) if key is not None else np.lexsort((cols, -scores, rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    keep = rank < k
    indptr = np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=m))].astype(cols.dtype)
    return sp.csr_matrix((scores[keep], cols[keep], indptr), shape=(m, n))


def packed_order_key(rows: np.ndarray, scores: np.ndarray, cols: np.ndarray, m: int, n: int) -> np.ndarray | None:
    r"""One uint64 per entry whose ascending order is (row, best score first, smaller column
    first), or None when (row, score, column) do not fit 64 bits (float64 scores, or
    :math:`\lceil\log_2 m\rceil + 32 + \lceil\log_2 n\rceil > 64`).

    A float32 score's bits b (never 0 or NaN here) order as the float does once negatives are
    inverted and positives get the sign bit set; inverting that again puts the best first.
    """
    row_bits, col_bits = max(int(m - 1).bit_length(), 1), max(int(n - 1).bit_length(), 1)
    if scores.dtype != np.float32 or row_bits + 32 + col_bits > 64:
        return None
    bits = scores.view(np.uint32)
    ascending = np.where(bits >> np.uint32(31), ~bits, bits | np.uint32(1 << 31))
    best_first = (~ascending).astype(np.uint64)
    return ((rows.astype(np.uint64) << np.uint64(32 + col_bits)) | (best_first << np.uint64(col_bits))
            | cols.astype(np.uint64))


def _shard(X: sp.csr_matrix, k: int, start: int, stop: int, exclude: sp.csr_matrix | None,
           kernel_args: dict) -> sp.csr_matrix:
    from recforge.kernels import similarity_topk

    X, exclude = landed(X), landed(exclude)
    args = dict(kernel_args)
    args["num_threads"] = kernel_threads(args.get("num_threads"))
    whole = start == 0 and stop == X.shape[0]
    # the client validated X and exclude (recforge.distributed.similarity_topk)
    return similarity_topk(X, k, exclude=exclude, pair_rows=None if whole else (start, stop), check_input=False,
                           **args)


def sharded_half_product(client: Any, X: sp.csr_matrix, k: int, exclude: sp.csr_matrix | None,
                         kernel_args: dict, df: np.ndarray | None = None) -> sp.csr_matrix:
    """Y=None as the half product in row-range shards (one per worker), merged row by row.

    X (and ``exclude``) are scattered to every worker once; each task carries only its range.
    One worker runs the plain kernel call on all rows (the single-process computation). The
    first scatter runs while the client cuts the ranges (``df``: X's column counts, when known).
    """
    from concurrent.futures import ThreadPoolExecutor

    token = job_token("similarity-half", X, k, sorted(kernel_args.items()), exclude)

    def scatter_operands():
        return scatter_everywhere(client, X), None if exclude is None else scatter_everywhere(client, exclude)

    with ThreadPoolExecutor(1, thread_name_prefix="recforge-scatter") as pool:     # waits for it on leaving
        first_scatter = [pool.submit(scatter_operands)]      # its error, if any, is raised in attempt
        shards = pair_ranges(X, max(len(client.nthreads()), 1), df)

    def attempt():
        scattered_x, scattered_ex = first_scatter.pop().result() if first_scatter else scatter_operands()
        return run_blocks(client, "similarity-half", token, _shard, shards,
                          lambda b: (scattered_x, k, b.start, b.stop, scattered_ex), kernel_args=kernel_args)

    parts = run_job(attempt)
    return parts[0] if len(parts) == 1 else merge_row_candidates(parts, min(k, X.shape[0]))
