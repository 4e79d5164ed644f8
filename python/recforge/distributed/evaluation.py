"""recforge.evaluate with the recommendation lists computed on a Dask cluster.

The full-ranking protocol spends its time in ``model.recommend`` for every evaluated user; those
calls are sharded by users over the cluster (:func:`recommend_all`), and the lists are then scored
by the very code of :func:`recforge.evaluate`, so the table is the same as the single-process one.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from recforge.distributed.cluster import resolve_client
from recforge.distributed.recommend import recommend_all


class _Lists:
    """A fitted model whose recommend answers from lists computed beforehand on the cluster
    (and whose predict, for AUC or rating metrics, is the model's own)."""

    def __init__(self, model: Any, users: np.ndarray, items: np.ndarray, exclude_seen: bool):
        self.model, self.exclude_seen = model, exclude_seen
        self.row = np.full(model.n_users_, -1, dtype=np.int64)
        self.row[users] = np.arange(users.size)
        self.items = items

    def recommend(self, users, n=10, *, exclude_seen=True, **_):
        rows = self.row[np.asarray(users)]
        if exclude_seen != self.exclude_seen or (rows < 0).any() or n > self.items.shape[1]:
            return self.model.recommend(users, n, exclude_seen=exclude_seen)
        return self.items[rows, :n], None

    def predict(self, users, items, **kwargs):
        return self.model.predict(users, items, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def evaluate(model: Any, train: Any, test: Any, metrics: str | Iterable[str] = ("ndcg@10", "recall@20"), *,
             client: Any = None, block_users: int | None = None, exclude_train: bool = True, **evaluate_args: Any):
    """:func:`recforge.evaluate` (full-ranking protocol) with the per-user recommendation lists
    computed in blocks of users over a cluster; returns the same table.

    ``test`` may also be a Dask DataFrame with integer ``user`` and ``item`` code columns (and an
    optional ``value``), read partition by partition into the test matrix.
    """
    from recforge.evaluation.names import parse_metrics
    from recforge.evaluation.protocols import evaluate as evaluate_local
    from recforge.evaluation.protocols import align_test, interaction_matrix, pattern

    if evaluate_args.get("protocol", "full") != "full":
        raise ValueError("recforge.distributed.evaluate runs the full-ranking protocol")
    client = resolve_client(client)
    test = _test_matrix(test, model) if hasattr(test, "npartitions") else test
    specs = parse_metrics(metrics)
    depth = max((s.k for s in specs if s.k is not None), default=0)
    if depth:
        train_csr = pattern(interaction_matrix(train, "train"))
        held_out, _ = align_test(train, test, train_csr, interaction_matrix(test, "test"))
        users = np.flatnonzero(np.diff(held_out.indptr)).astype(np.int64)
        items, _ = recommend_all(model, users, depth, client=client, block_users=block_users,
                                 exclude_seen=exclude_train)
        model = _Lists(model, users, items, exclude_train)
    return evaluate_local(model, train, test, metrics, exclude_train=exclude_train, **evaluate_args)


def _test_matrix(frame: Any, model: Any):
    """A Dask DataFrame of (user, item[, value]) codes as a users x items CSR, built from its
    partitions on the workers and concatenated here (the held-out set is the small side)."""
    import scipy.sparse as sp

    missing = {"user", "item"} - set(frame.columns)
    if missing:
        raise ValueError(f"test as a Dask DataFrame needs integer columns user and item; missing {sorted(missing)}")
    cols = ["user", "item"] + (["value"] if "value" in frame.columns else [])
    parts = frame[cols].to_delayed()
    shape = (model.n_users_, model.n_items_)
    from dask import compute, delayed

    def to_coo(df):
        data = df["value"].to_numpy(np.float32) if "value" in df else np.ones(len(df), np.float32)
        return sp.coo_matrix((data, (df["user"].to_numpy(), df["item"].to_numpy())), shape=shape)

    pieces = compute(*[delayed(to_coo)(p) for p in parts])
    M = sum((p.tocsr() for p in pieces), sp.csr_matrix(shape, dtype=np.float32))
    return M.tocsr()
