"""recforge.distributed: the same kernels, batch recommendation and evaluation on a Dask cluster.

    from dask.distributed import Client
    import recforge.distributed as rd

    client = Client("tcp://scheduler:8786")          # or None: a LocalCluster sized to this machine
    S = rd.similarity_topk(X, 50, client=client)       # identical to recforge.kernels.similarity_topk
    items = rd.prepare_candidates(Y, metric="cosine", client=client)   # prepared and held on the workers
    S = rd.similarity_topk(X_batch, 50, items, client=client)          # ships only X_batch
    rd.similarity_topk(X, 50, client=client, output="parquet:///data/neighbours")   # one file per block
    items, scores = rd.recommend_all(model, n=10, client=client)
    table = rd.evaluate(model, train, test, ["ndcg@10"], client=client)

Work is split into blocks of rows (users), each a pure task keyed by its block, so a worker that
dies mid-job has its blocks recomputed elsewhere and the result is the same, bit for bit, as the
single-process call. The fixed operand (the candidate matrix, the item vectors, the model) is
scattered to every worker once. Any Dask deployment works — ``LocalCluster``, a scheduler address,
dask-kubernetes, dask-yarn, dask-jobqueue: see :mod:`recforge.distributed.cluster`.

Needs the ``dask`` extra: ``pip install "recforge[dask]"``.
"""
from __future__ import annotations

__all__ = ["similarity_topk", "prepare_candidates", "ScatteredCandidates", "dense_topk", "recommend_all", "evaluate",
           "resolve_client", "ParquetOutput"]

_LAZY = {"similarity_topk": "recforge.distributed.similarity", "dense_topk": "recforge.distributed.dense",
         "prepare_candidates": "recforge.distributed.candidates", "ScatteredCandidates": "recforge.distributed.candidates",
         "recommend_all": "recforge.distributed.recommend", "evaluate": "recforge.distributed.evaluation",
         "resolve_client": "recforge.distributed.cluster", "ParquetOutput": "recforge.distributed.parquet"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recforge.distributed' has no attribute {name!r}")
