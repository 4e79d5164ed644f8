"""Full-ranking evaluation of a synthetic random-embedding model in bounded memory.

    python benchmarks/bench_evaluation.py                 # 100k users x 27k items (the issue's size)
    python benchmarks/bench_evaluation.py --users 10000   # a smaller run

Prints the time and peak memory of ``recforge.evaluate(..., ["ndcg@10", "recall@20"])`` under
the full protocol, the part of that time spent in the metric code itself (numpy) versus the
model's top-k, the size the users x items score matrix would have had, and a check of per-user
values against a brute-force reference on a sample of users. The model's ``recommend`` uses
``recforge.kernels.dense_topk`` when it exists, else a chunked numpy argpartition fallback
(this file only); the output says which ran.
"""
from __future__ import annotations

import argparse
import math
import resource
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

import recforge
from recforge.evaluation import metrics as M

try:
    from recforge.kernels import dense_topk
except ImportError:
    dense_topk = None


class EmbeddingModel:
    """score(u, i) = U[u] . V[i]; recommend = top-n excluding train items (ties: smaller item code)."""

    def __init__(self, U, V, train, engine, num_threads=0):
        self.U, self.V, self.train, self.engine, self.num_threads = U, V, train, engine, num_threads

    def recommend(self, users, n=10, *, exclude_seen=True):
        exclude = self.train[users] if exclude_seen else None
        if self.engine == "dense_topk":
            return dense_topk(self.U[users], self.V, n, exclude=exclude, num_threads=self.num_threads)
        scores = self.U[users] @ self.V.T
        if exclude is not None:
            coo = exclude.tocoo()
            scores[coo.row, coo.col] = -np.inf
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -top), axis=1)
        items, top = np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)
        return np.where(np.isfinite(top), items, -1), top

    def predict(self, users, items):
        return np.einsum("pd,pd->p", self.U[users], self.V[items])


class Replay:
    """A 'model' that returns lists computed beforehand: times evaluate's own work."""

    def __init__(self, users, lists):
        self.row = np.full(users.max() + 1, -1)
        self.row[users] = np.arange(users.size)
        self.lists = lists

    def recommend(self, users, n=10, *, exclude_seen=True):
        return self.lists[self.row[users], :n], None


def synthetic(n_users, n_items, dim, train_per_user, test_per_user, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_users, dim), dtype=np.float32)
    V = rng.standard_normal((n_items, dim), dtype=np.float32)

    def random_rows(per_user):
        rows = np.repeat(np.arange(n_users), per_user)
        X = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, rng.integers(0, n_items, rows.size))),
                          shape=(n_users, n_items))
        X.sum_duplicates()
        X.data[:] = 1
        return X

    train = random_rows(train_per_user)
    test = random_rows(test_per_user)  # random items, then made partly predictable below
    test = test - test.multiply(train)
    test.eliminate_zeros()
    # plant a signal so that hits are not all zero: pull each user towards its held-out items
    counts = np.maximum(np.diff(test.indptr), 1)[:, None]
    U += (3.0 * (test @ V) / counts).astype(np.float32)
    return U, V, train, test


def reference_per_user(model, train, test, users, k_ndcg=10, k_recall=20):
    """Brute force for a few users: full score row, train removed, stable sort, the definitions."""
    out = []
    for u in users:
        scores = model.U[u] @ model.V.T
        scores[train[u].indices] = -np.inf
        ranking = np.lexsort((np.arange(scores.size), -scores))
        relevant = set(test[u].indices.tolist())
        hits = [int(i in relevant) for i in ranking[:k_recall]]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits[:k_ndcg]))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k_ndcg, len(relevant))))
        out.append((dcg / idcg, sum(hits) / len(relevant)))
    return np.array(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--train-per-user", type=int, default=20)
    parser.add_argument("--test-per-user", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--engine", choices=["auto", "dense_topk", "numpy"], default="auto")
    parser.add_argument("--threads", type=int, default=0, help="dense_topk threads (0 = all cores)")
    parser.add_argument("--check-users", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sampled", action="store_true",
                        help="also time the sampled protocol (100 negatives per user, model.predict)")
    args = parser.parse_args()

    engine = args.engine
    if engine == "auto":
        engine = "dense_topk" if dense_topk is not None else "numpy"
    if engine == "dense_topk" and dense_topk is None:
        raise SystemExit("recforge.kernels.dense_topk is not available in this build")

    t0 = time.perf_counter()
    U, V, train, test = synthetic(args.users, args.items, args.dim, args.train_per_user, args.test_per_user)
    print(f"data: {args.users} users x {args.items} items, dim {args.dim}; train nnz {train.nnz}, "
          f"test nnz {test.nnz} ({time.perf_counter() - t0:.1f} s to build)")
    print(f"model.recommend engine: {engine}"
          + (" (recforge.kernels.dense_topk)" if engine == "dense_topk" else
             " (chunked numpy GEMM + argpartition fallback; dense_topk not importable)" if dense_topk is None
             else " (numpy fallback, chosen with --engine)"))
    model = EmbeddingModel(U, V, train, engine, args.threads)
    dense_bytes = args.users * args.items * 4
    print(f"a users x items float32 score matrix would take {dense_bytes / 2**30:.1f} GiB")

    import pandas  # noqa: F401  (imported once up front so that its import time is not counted)

    metrics = ["ndcg@10", "recall@20"]
    times = []
    for _ in range(args.repeats):
        tracemalloc.start()
        start = time.perf_counter()
        per_user = recforge.evaluate(model, train, test, metrics, batch_size=args.batch_size, per_user=True)
        times.append(time.perf_counter() - start)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    summary = per_user.attrs["summary"]
    print(summary.to_string())
    print(f"evaluate (full protocol, {per_user.shape[0]} users, batch {args.batch_size}): "
          f"median {np.median(times):.2f} s over {len(times)} run(s); "
          f"peak traced allocation during evaluate {peak / 2**20:.0f} MiB; "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")

    # the metric code alone, on the lists the model produced (is numpy fast enough at this size?)
    users = per_user.index.to_numpy()
    start = time.perf_counter()
    rec = np.concatenate([model.recommend(users[i:i + args.batch_size], 20)[0]
                          for i in range(0, users.size, args.batch_size)])
    recommend_time = time.perf_counter() - start
    print(f"model.recommend alone (same chunks): {recommend_time:.2f} s")
    replay = Replay(users, rec)
    start = time.perf_counter()
    replayed = recforge.evaluate(replay, train, test, metrics, batch_size=args.batch_size)
    print(f"evaluate around replayed lists (everything but the model's scoring): "
          f"{time.perf_counter() - start:.2f} s")
    assert np.allclose(replayed["value"].to_numpy(), summary["value"].to_numpy())
    relevant = sp.csr_matrix(test)[users]
    start = time.perf_counter()
    m = M.match(rec, relevant)
    ndcg, recall = M.ndcg_per_user(m, 10), M.recall_per_user(m, 20)
    metric_time = time.perf_counter() - start
    print(f"metric code alone (numpy: match + ndcg@10 + recall@20 on {users.size} x 20 lists): "
          f"{metric_time:.3f} s = {100 * metric_time / np.median(times):.1f}% of evaluate")
    assert np.allclose(ndcg, per_user["ndcg@10"].to_numpy()) and np.allclose(recall, per_user["recall@20"].to_numpy())

    sample = np.random.default_rng(1).choice(users, size=min(args.check_users, users.size), replace=False)
    expected = reference_per_user(model, train.tocsr(), sp.csr_matrix(test), sample)
    got = per_user.loc[sample, ["ndcg@10", "recall@20"]].to_numpy()
    worst = float(np.abs(got - expected).max())
    print(f"check: per-user values of {sample.size} random users vs brute force: max |diff| {worst:.2e}")
    if worst > 1e-6:
        raise SystemExit("MISMATCH against the brute-force reference")

    if args.sampled:
        tracemalloc.start()
        start = time.perf_counter()
        sampled = recforge.evaluate(model, train, test, metrics + ["auc"], protocol="sampled", n_negatives=100,
                                    batch_size=args.batch_size)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(sampled.to_string())
        print(f"evaluate (sampled protocol, 100 negatives per user): {elapsed:.2f} s; "
              f"peak traced allocation {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
