"""similarity_topk (item-item cosine) against implicit, sparse_dot_topn and chunked scipy.

All libraries run in this one process, on the same matrix, with the same thread count; their
top-k scores are compared rank by rank with recforge's (agreement within 1e-3) and with exact
float64 scores on 200 sampled rows. Times are medians; ratio = peer time / recforge time.

    python benchmarks/bench_similarity.py --threads 2 --datasets ml100k gowalla synthetic
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(__file__))
from common import cached_powerlaw_interactions, gowalla_train, measure, ml100k, print_table  # noqa: E402

from recforge.kernels import similarity_topk  # noqa: E402


def l2_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv.astype(X.dtype)) @ X)


def drop_self(S: sp.csr_matrix, k: int) -> list[np.ndarray]:
    """Each row's scores without the diagonal entry, best first, at most k."""
    S = S.tocsr()
    out = []
    for i in range(S.shape[0]):
        lo, hi = S.indptr[i], S.indptr[i + 1]
        idx, val = S.indices[lo:hi], S.data[lo:hi]
        val = np.sort(val[(idx != i) & (val != 0)])[::-1][:k]
        out.append(val)
    return out


def run_recforge(X, k, threads):
    return similarity_topk(X, k, metric="cosine", num_threads=threads)


def run_implicit(user_items, k, threads):
    from implicit.nearest_neighbours import CosineRecommender
    model = CosineRecommender(K=k + 1, num_threads=threads)
    model.fit(user_items, show_progress=False)
    return model.similarity


def run_sparse_dot_topn(X, k, threads):
    from sparse_dot_topn import sp_matmul_topn
    Xn = l2_rows(X)
    return sp_matmul_topn(Xn, Xn.T.tocsr(), top_n=k + 1, sort=True, n_threads=threads)


def run_scipy_chunked(X, k, threads, chunk=2048):
    """Single-threaded reference: sparse product per block of rows, then argpartition."""
    Xn = l2_rows(X)
    XT = Xn.T.tocsc()
    rows, cols, vals = [], [], []
    for start in range(0, X.shape[0], chunk):
        block = (Xn[start:start + chunk] @ XT).toarray()
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = 0
        kk = min(k, block.shape[1] - 1)
        top = np.argpartition(-block, kk, axis=1)[:, :kk]
        v = np.take_along_axis(block, top, axis=1)
        r = np.repeat(np.arange(start, start + block.shape[0]), kk)
        keep = v.ravel() != 0
        rows.append(r[keep]); cols.append(top.ravel()[keep]); vals.append(v.ravel()[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(X.shape[0],) * 2)


def max_deviation(reference: list[np.ndarray], other: list[np.ndarray]) -> float:
    """Largest |score difference| at equal rank; inf when a row's neighbour count differs by > 1."""
    worst = 0.0
    for a, b in zip(reference, other):
        n = min(a.size, b.size)
        if abs(a.size - b.size) > 1:
            return float("inf")
        if n:
            worst = max(worst, float(np.max(np.abs(a[:n] - b[:n]))))
    return worst


def exact_rows(X: sp.csr_matrix, rows: np.ndarray, k: int) -> list[np.ndarray]:
    """float64 top-k cosine scores (self excluded) of the given rows: the accuracy yardstick."""
    X64 = X.astype(np.float64)
    norms = np.sqrt(np.asarray(X64.multiply(X64).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    block = (X64[rows] @ X64.T).toarray() / norms[rows, None] / norms[None, :]
    block[np.arange(rows.size), rows] = 0.0
    return [np.sort(r[r != 0])[::-1][:k] for r in block]


def load(name: str, scale: float) -> sp.csr_matrix:
    if name == "ml100k":
        return ml100k()
    if name == "gowalla":
        return gowalla_train()
    if name == "synthetic":
        if scale == 1.0:
            return cached_powerlaw_interactions()
        return cached_powerlaw_interactions(n_users=int(138_000 * scale), n_items=max(1, int(27_000 * scale)),
                                            nnz=int(20_000_000 * scale))
    raise ValueError(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--datasets", nargs="+", default=["ml100k", "gowalla", "synthetic"])
    p.add_argument("--peers", nargs="+", default=["implicit", "sparse_dot_topn", "scipy"])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="shrink the synthetic matrix (e.g. 0.1)")
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)

    for name in args.datasets:
        R = load(name, args.scale)
        X = R.T.tocsr().astype(np.float32)  # items x users: item-item similarity
        madds = float(np.square(np.diff(R.indptr).astype(np.float64)).sum())
        print(f"\n== {name}: {R.shape[0]} users x {R.shape[1]} items, {R.nnz} interactions, "
              f"{madds / 1e9:.2f} G multiply-adds in R^T R; item-item cosine, k={args.k}, {args.threads} threads")
        t, spread, ours = measure(lambda: run_recforge(X, args.k, args.threads), repeat=args.repeat, warmup=args.warmup)
        reference = drop_self(ours, args.k)
        sample = np.random.default_rng(0).choice(X.shape[0], size=min(200, X.shape[0]), replace=False)
        exact = exact_rows(X, sample, args.k)
        error = max_deviation(exact, [reference[i] for i in sample])
        rows = [{"library": "recforge", "median_s": f"{t:.3f}", "spread_s": f"{spread:.3f}",
                 "max_dev_vs_recforge": "-", "max_err_vs_float64": f"{error:.1e}", "ratio": "1.00"}]
        runners = {
            "implicit": lambda: run_implicit(R.astype(np.float32), args.k, args.threads),
            "sparse_dot_topn": lambda: run_sparse_dot_topn(X, args.k, args.threads),
            "scipy": lambda: run_scipy_chunked(X, args.k, 1),
        }
        best_peer = None
        for peer in args.peers:
            if peer == "scipy" and name == "synthetic" and args.scale >= 0.5:
                rows.append({"library": "scipy (chunked, 1 thread)", "median_s": "skipped: hours at this size"})
                continue
            try:
                pt, pspread, res = measure(runners[peer], repeat=args.repeat, warmup=args.warmup)
            except ImportError as exc:
                rows.append({"library": peer, "median_s": f"not installed ({exc})"})
                continue
            theirs = drop_self(res, args.k)
            deviation = max_deviation(reference, theirs)
            peer_error = max_deviation(exact, [theirs[i] for i in sample])
            label = peer + (" (1 thread)" if peer == "scipy" else "")
            rows.append({"library": label, "median_s": f"{pt:.3f}", "spread_s": f"{pspread:.3f}",
                         "max_dev_vs_recforge": f"{deviation:.1e}" + ("" if deviation <= 1e-3 else " DISAGREE"),
                         "max_err_vs_float64": f"{peer_error:.1e}", "ratio": f"{pt / t:.2f}"})
            if peer != "scipy":
                best_peer = pt if best_peer is None else min(best_peer, pt)
        print_table(rows, ["library", "median_s", "spread_s", "max_dev_vs_recforge", "max_err_vs_float64", "ratio"])
        print("(top-k scores compared rank by rank; float64 error measured on 200 sampled rows)")
        if best_peer is not None:
            print(f"recforge speed-up over the faster of implicit / sparse_dot_topn: {best_peer / t:.2f}x")


if __name__ == "__main__":
    main()
