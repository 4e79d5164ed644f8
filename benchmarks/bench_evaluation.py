"""Full-ranking evaluation (NDCG@10 + recall@20, seen items excluded) in bounded memory.

Group "evaluate <size>": ``recforge.evaluate`` of a random-embedding model (inputs:
recforge.bench.inputs.planted_embeddings) whose ``recommend`` is

* ``dense_topk``: ``recforge.kernels.dense_topk(exclude=train rows)``;
* ``numpy``: the peer: BLAS ``U V^T`` per batch, train items set to -inf, argpartition;
* ``replay``: lists computed beforehand, so the time is evaluate's own work (metrics, batching).

Checked before timing: per-user NDCG@10 and recall@20 of 200 random users equal a brute-force
reference (full score row, stable sort, the definitions) within 1e-6, and every engine's summary
equals the dense_topk one. The peak traced allocation (tracemalloc) of one evaluate call and the
size the users x items score matrix would have had are stored in the JSON's extra_info.

    pytest benchmarks/bench_evaluation.py --benchmark-only -k large     # 100k users x 27k items
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.bench.inputs import planted_embeddings

SIZES = ("tiny", "small", "large")
SHAPES = {"tiny": (2_000, 1_000), "small": (20_000, 5_000), "large": (100_000, 27_000)}
METRICS = ["ndcg@10", "recall@20"]
BATCH = 1024


class EmbeddingModel:
    """score(u, i) = U[u] . V[i]; recommend = top-n without the train items (ties: smaller code)."""

    def __init__(self, U, V, train, engine, num_threads):
        self.U, self.V, self.train, self.engine, self.num_threads = U, V, train, engine, num_threads

    def recommend(self, users, n=10, *, exclude_seen=True):
        exclude = self.train[users] if exclude_seen else None
        if self.engine == "dense_topk":
            from recforge.kernels import dense_topk

            return dense_topk(self.U[users], self.V, n, exclude=exclude, num_threads=self.num_threads)
        from recforge.bench.peers import numpy_topk

        items, scores = numpy_topk(self.U[users], self.V, n, exclude)
        return np.where(np.isfinite(scores), items, -1), scores


class Replay:
    """A 'model' returning lists computed beforehand: times evaluate's own work."""

    def __init__(self, users, lists):
        self.row = np.full(users.max() + 1, -1)
        self.row[users] = np.arange(users.size)
        self.lists = lists

    def recommend(self, users, n=10, *, exclude_seen=True):
        return self.lists[self.row[users], :n], None


def reference_per_user(U, V, train, test, users, k_ndcg=10, k_recall=20) -> np.ndarray:
    """Brute force for a few users: full score row, train removed, stable sort, the definitions."""
    out = []
    for u in users:
        scores = U[u] @ V.T
        scores[train[u].indices] = -np.inf
        ranking = np.lexsort((np.arange(scores.size), -scores))
        relevant = set(test[u].indices.tolist())
        hits = [int(i in relevant) for i in ranking[:k_recall]]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits[:k_ndcg]))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k_ndcg, len(relevant))))
        out.append((dcg / idcg, sum(hits) / len(relevant)))
    return np.array(out)


_DATA: dict[str, tuple] = {}


def data(size: str, threads: int):
    """(U, V, train, test, per-user values of the dense_topk model) of a size, built once."""
    if size not in _DATA:
        import recforge

        U, V, train, test = planted_embeddings(*SHAPES[size])
        model = EmbeddingModel(U, V, train, "dense_topk", threads)
        per_user = recforge.evaluate(model, train, test, METRICS, batch_size=BATCH, per_user=True)
        sample = np.random.default_rng(1).choice(per_user.index.to_numpy(), size=200, replace=False)
        expected = reference_per_user(U, V, train.tocsr(), sp.csr_matrix(test), sample)
        worst = float(np.abs(per_user.loc[sample, METRICS].to_numpy() - expected).max())
        assert worst <= 1e-6, f"per-user values differ from the brute-force reference by {worst}"
        _DATA[size] = (U, V, train, test, per_user)
    return _DATA[size]


@pytest.mark.parametrize("engine", ["dense_topk", "numpy", "replay"])
def test_evaluate_full_ranking(benchmark, size, engine, threads):
    pytest.importorskip("pandas")
    import recforge

    U, V, train, test, per_user = data(size, threads)
    summary = per_user.attrs["summary"]["value"].to_numpy()
    if engine == "replay":
        users = per_user.index.to_numpy()
        ranker = EmbeddingModel(U, V, train, "dense_topk", threads)
        lists = np.concatenate([ranker.recommend(users[i:i + BATCH], 20)[0] for i in range(0, users.size, BATCH)])
        model = Replay(users, lists)
    else:
        model = EmbeddingModel(U, V, train, engine, threads)
    benchmark.group = f"evaluate {size}"

    def run():
        return recforge.evaluate(model, train, test, METRICS, batch_size=BATCH)

    tracemalloc.start()
    got = run()["value"].to_numpy()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.allclose(got, summary, atol=1e-9), f"{engine}: {got} vs dense_topk's {summary}"
    benchmark.extra_info.update(users=int(U.shape[0]), items=int(V.shape[0]), peak_traced_mib=peak / 2**20,
                                score_matrix_gib=U.shape[0] * V.shape[0] * 4 / 2**30,
                                agreement=f"summary equal to dense_topk's; dense_topk per-user values equal brute force")
    benchmark(run)
