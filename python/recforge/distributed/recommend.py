"""Batch recommendation for every user of a fitted model on a Dask cluster."""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge.distributed.blocks import job_token, row_blocks, run_blocks, run_job, scatter_everywhere
from recforge.distributed.cluster import resolve_client
from recforge.distributed.parquet import ParquetOutput, parse_output, write_partition
from recforge.distributed.shipping import landed
from recforge.kernels import _validation as v


def _block(model: Any, users: np.ndarray, start: int, n: int, recommend_args: dict, folder: str | None):
    items, scores = landed(model).recommend(users, n, **recommend_args)
    if folder is None:
        return items, scores
    return write_partition(folder, start, {
        "user": np.repeat(users, n), "rank": np.tile(np.arange(n, dtype=np.int32), users.size),
        "item": np.asarray(items).reshape(-1), "score": scores.reshape(-1)})


def recommend_all(model: Any, users: Any = None, n: int = 10, *, client: Any = None,
                  block_users: int | None = None, output: str | None = None, **recommend_args: Any):
    """``model.recommend`` for ``users`` (default: every user code) in blocks over a cluster.

    The fitted model is pickled and scattered to every worker once (its arrays travel once; the
    training input it was fitted on does not); each task carries only its block of user codes.
    ``users``: codes as a numpy array, a list or a ``dask.array`` (computed once, small).
    ``recommend_args``: ``exclude_seen``, ``filter_items``. Returns ``(items, scores)`` identical to
    ``model.recommend(users, n, ...)``, or a :class:`ParquetOutput` (columns ``user``, ``rank``,
    ``item``, ``score``) with ``output="parquet://FOLDER"``.
    """
    client = resolve_client(client)
    if not getattr(model, "is_fitted", False):
        raise ValueError("model must be a fitted recforge model (call fit first)")
    n = v.check_positive_int(n, "n")
    if "history" in recommend_args or "ids" in recommend_args:
        raise ValueError("recommend_all works on user codes of the fitted model (no history= or ids=)")
    if users is None:
        users = np.arange(model.n_users_, dtype=np.int64)
    elif hasattr(users, "compute"):
        users = np.asarray(users.compute())
    users = np.asarray(users).reshape(-1)
    if users.size and users.dtype.kind not in "iu":
        raise TypeError(f"users must be integer user codes, got dtype {users.dtype}")
    users = users.astype(np.int64)
    if users.size and (users.min() < 0 or users.max() >= model.n_users_):
        raise ValueError(f"users holds codes outside 0..{model.n_users_ - 1}")
    model.recommend(users[:1], n, **recommend_args)            # argument checks, once, here
    folder = parse_output(output)
    blocks = row_blocks(users.size, block_users, len(client.nthreads()))
    token = job_token("recommend", type(model).__name__, id(model), users, n, sorted(recommend_args.items()), output)

    def attempt():
        scattered = scatter_everywhere(client, model)
        return run_blocks(client, "recommend", token, _block, blocks, lambda b: (scattered, users[b], b.start, n),
                          recommend_args=recommend_args, folder=None if folder is None else str(folder))

    results = run_job(attempt)
    if folder is not None:
        return ParquetOutput(folder, [type(folder)(r) for r in results], users.size)
    if not results:
        return np.empty((0, n), np.int64), np.empty((0, n), np.float32)
    return np.vstack([r[0] for r in results]), np.vstack([r[1] for r in results])
