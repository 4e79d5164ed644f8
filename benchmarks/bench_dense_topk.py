"""dense_topk against faiss IndexFlatIP and torch mm + topk, with and without exclusion.

Same inputs, same thread count, one process. Default: 20,000 queries x 50,000 items x 64 dims,
k=10; with exclusion every query excludes ~100 random items. Peers for exclusion: faiss asked
for k + (most excluded in any row) results then filtered in numpy, and torch with the excluded
scores set to -inf before topk. Results are checked to agree; medians and ratios are printed.

    python benchmarks/bench_dense_topk.py --threads 2            # full size
    python benchmarks/bench_dense_topk.py --threads 2 --quick    # smoke run
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from common import median_time


def random_exclusion(m: int, n: int, per_row: int, seed: int = 2) -> sp.csr_matrix:
    """About `per_row` distinct random items per query (Poisson counts around per_row)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(per_row, size=m)
    rows = np.repeat(np.arange(m), counts)
    cols = rng.integers(0, n, size=rows.size)
    E = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(m, n))
    E.sum_duplicates()
    return E


def faiss_then_filter(index, Q, k: int, exclude: sp.csr_matrix):
    """faiss search for k + max excluded per row, then drop excluded items and keep the first k."""
    if exclude.nnz == 0:
        return index.search(Q, k)
    extra = int(np.diff(exclude.indptr).max())
    D, I = index.search(Q, k + extra)
    m, n = exclude.shape
    excluded_codes = np.repeat(np.arange(m, dtype=np.int64), np.diff(exclude.indptr)) * n + exclude.indices
    codes = np.arange(m, dtype=np.int64)[:, None] * n + I
    pos = np.searchsorted(excluded_codes, codes)
    hit = excluded_codes[np.minimum(pos, excluded_codes.size - 1)] == codes
    keep_order = np.argsort(hit, axis=1, kind="stable")[:, :k]  # non-excluded first, order kept
    return np.take_along_axis(D, keep_order, axis=1), np.take_along_axis(I, keep_order, axis=1)


def torch_topk(Q, V, k: int, exclude: sp.csr_matrix | None, chunk: int = 1024):
    import torch

    Qt, Vt = torch.from_numpy(Q), torch.from_numpy(V)
    scores, indices = [], []
    for start in range(0, Q.shape[0], chunk):
        S = Qt[start:start + chunk] @ Vt.T
        if exclude is not None:
            block = exclude[start:start + chunk]
            rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            S[torch.from_numpy(rows), torch.from_numpy(block.indices.astype(np.int64))] = -float("inf")
        s, i = torch.topk(S, k, dim=1)
        scores.append(s)
        indices.append(i)
    return torch.cat(scores).numpy(), torch.cat(indices).numpy()


def check_agree(name: str, ref_scores, ref_idx, scores, idx) -> None:
    """Scores equal up to float32 rounding; indices equal except where near-ties may swap."""
    assert np.allclose(scores, ref_scores, rtol=1e-4, atol=1e-4), f"{name}: scores disagree with recforge"
    same = float(np.mean(idx == ref_idx))
    assert same > 0.999, f"{name}: only {same:.4%} of indices agree with recforge"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--excluded", type=int, default=100, help="excluded items per query (about)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 x 10,000, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.items, args.repeats = 2_000, 10_000, 1

    import faiss
    import torch

    from recforge.kernels import dense_topk

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    m, n, d, k, T = args.queries, args.items, args.dim, args.k, args.threads
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((m, d), dtype=np.float32)
    V = rng.standard_normal((n, d), dtype=np.float32)
    exclude = random_exclusion(m, n, args.excluded)
    index = faiss.IndexFlatIP(d)
    index.add(V)
    flops = 2.0 * m * n * d
    print(f"dense_topk: {m:,} queries x {n:,} items x {d} dims, k={k}, threads={T}, "
          f"exclusion {exclude.nnz / m:.0f} items per query (max {np.diff(exclude.indptr).max()})")

    t_rf, (i_rf, s_rf) = median_time(lambda: dense_topk(Q, V, k, num_threads=T), args.repeats)
    t_fa, (s_fa, i_fa) = median_time(lambda: index.search(Q, k), args.repeats)
    t_to, (s_to, i_to) = median_time(lambda: torch_topk(Q, V, k, None), args.repeats)
    check_agree("faiss", s_rf, i_rf, s_fa, i_fa)
    check_agree("torch", s_rf, i_rf, s_to, i_to)
    print("\nwithout exclusion                 median s   peer / recforge")
    print(f"  recforge.dense_topk            {t_rf:9.3f}   ({flops / t_rf / 1e9:.0f} GFLOP/s)")
    print(f"  faiss IndexFlatIP              {t_fa:9.3f}   {t_fa / t_rf:6.2f}x")
    print(f"  torch mm + topk (1024 chunks)  {t_to:9.3f}   {t_to / t_rf:6.2f}x")

    t_rfx, (i_rfx, s_rfx) = median_time(lambda: dense_topk(Q, V, k, exclude=exclude, num_threads=T), args.repeats)
    t_fax, (s_fax, i_fax) = median_time(lambda: faiss_then_filter(index, Q, k, exclude), args.repeats)
    t_tox, (s_tox, i_tox) = median_time(lambda: torch_topk(Q, V, k, exclude), args.repeats)
    check_agree("faiss + filter", s_rfx, i_rfx, s_fax, i_fax)
    check_agree("torch + mask", s_rfx, i_rfx, s_tox, i_tox)
    excluded_codes = np.repeat(np.arange(m, dtype=np.int64), np.diff(exclude.indptr)) * n + exclude.indices
    returned_codes = np.arange(m, dtype=np.int64)[:, None] * n + i_rfx
    assert not np.isin(returned_codes, excluded_codes).any(), "recforge returned an excluded item"
    print(f"\nwith exclusion (~{args.excluded} per query)")
    print(f"  recforge.dense_topk(exclude=)  {t_rfx:9.3f}")
    print(f"  faiss k+{np.diff(exclude.indptr).max()} then filter      {t_fax:9.3f}   {t_fax / t_rfx:6.2f}x")
    print(f"  torch mm, mask, topk           {t_tox:9.3f}   {t_tox / t_rfx:6.2f}x")


if __name__ == "__main__":
    main()
