r"""Private item neighbourhoods after McSherry & Mironov (KDD 2009).

1. **Contribution bounding.** Each user's history is cut to at most ``max_items_per_user`` items
   (a seeded uniform sample) and binarised; user u contributes with weight
   :math:`w_u = 1 / |I_u|` to every pair of its items.
2. **Noisy co-occurrence.** :math:`C_{ij} = \sum_u w_u\,[i \in I_u][j \in I_u]` for :math:`i \le j`
   (the diagonal holds the weighted item counts, the norms). Removing one user changes this
   vector by :math:`\sqrt{\sum_{i \le j \in I_u} w_u^2} = \sqrt{|I_u|(|I_u|+1)/2}\,/\,|I_u| \le 1` in L2,
   so Gaussian noise with :func:`~recforge.privacy.dp.gaussian_sigma` (Delta = 1) on every
   :math:`i \le j` entry — zero pairs included — makes the released matrix (epsilon, delta)-DP
   at user level.
3. **Similarity and selection** (post-processing, no further privacy cost): pairs whose noisy
   count is below :math:`t\sigma` (``DP.threshold``) are dropped as indistinguishable from noise,
   the rest scored by the noisy cosine
   :math:`\tilde s_{ij} = \tilde C_{ij} / \sqrt{\max(\tilde C_{ii}, \tau) \max(\tilde C_{jj}, \tau)}` with
   :math:`\tau = 1 + (1 + t)\sigma` (so an item's norm is never taken from noise alone), then each
   item's k best neighbours. On ML-100K at epsilon = 10 the threshold (t = 3) lifts NDCG@10 from
   0.147 to 0.317 (benchmarks/bench_responsible.py).

**Memory and time.** The n x n matrix is never held, dense or noisy: rows are processed in
blocks of :data:`NOISE_TILE` items, each block's exact co-occurrence rows as a sparse matrix,
and only the pairs that survive the threshold are ever materialised (41k items: well under 1 GB).

**Noise without drawing it everywhere.** Every pair gets N(0, sigma^2) noise, but a pair whose
exact count is 0 survives the threshold only when its noise reaches :math:`t\sigma`, so (as in
Cormode, Procopiuc, Srivastava & Tran, "Differentially private summaries for sparse data", ICDT
2012) the zero pairs are handled in distribution: of M zero pairs, Binomial(M, Q) survive
(:math:`Q = P(N(0, \sigma^2) \ge t\sigma)`), a uniform choice of them, with values drawn from the
normal conditioned on :math:`\ge t\sigma`. The released neighbour lists then have exactly the
distribution of the dense mechanism above (noise on every pair, then threshold), so the privacy
argument is unchanged; ``threshold`` must be > 0 for this to be cheap (t = 3: 0.13% of the zero
pairs survive). Draws are made per tile of NOISE_TILE x NOISE_TILE pairs of the upper triangle,
from a Philox generator keyed by (seed, tile row, tile column) (:func:`noisy_pairs`): each
unordered pair is drawn once, (i, j) and (j, i) get the same noise, and the result depends on the
seed only, however the rows are blocked.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr, ndtri

from recforge.privacy.dp import DP, gaussian_sigma

#: side of the square tiles the pair noise is drawn in, and the rows processed at once
NOISE_TILE = 512


def bounded_histories(R: sp.csr_matrix, cap: int | None, rng: np.random.Generator) -> sp.csr_matrix:
    """Binary users x items histories, each cut to at most ``cap`` items (seeded uniform sample)."""
    R = sp.csr_matrix(R)
    lengths = np.diff(R.indptr)
    keep = np.ones(R.nnz, dtype=bool)
    if cap is not None:
        for u in np.flatnonzero(lengths > cap):
            start = R.indptr[u]
            drop = rng.permutation(lengths[u])[cap:]
            keep[start + drop] = False
    rows = np.repeat(np.arange(R.shape[0]), lengths)[keep]
    return sp.csr_matrix((np.ones(int(keep.sum())), (rows, R.indices[keep])), shape=R.shape)


def user_weighted(B: sp.csr_matrix) -> sp.csr_matrix:
    r""":math:`W = \mathrm{diag}(w) B` with :math:`w_u = 1 / |I_u|` (0 for an empty history), float64."""
    lengths = np.diff(B.indptr).astype(np.float64)
    w = np.divide(1.0, lengths, out=np.zeros_like(lengths), where=lengths > 0)
    return sp.csr_matrix(sp.diags(w) @ B)


def weighted_cooccurrence(B: sp.csr_matrix) -> np.ndarray:
    r"""Dense :math:`C = \sum_u w_u\, b_u b_u^\top` with :math:`w_u = 1 / |I_u|` (float64; small inputs only)."""
    return np.asarray((B.T @ user_weighted(B)).toarray(), dtype=np.float64)


def _generator(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([int(seed), 0x9E3779B9, *key])))


def noisy_diagonal(W: sp.csr_matrix, sigma: float, seed: int) -> np.ndarray:
    r"""The noisy norms :math:`\tilde C_{ii} = \sum_u w_u [i \in I_u] + z_{ii}`, :math:`z_{ii} \sim N(0, \sigma^2)`
    (one keyed draw per tile of the diagonal)."""
    n = W.shape[1]
    diag = np.asarray(W.sum(axis=0)).reshape(-1).astype(np.float64)
    if sigma > 0:
        for a in range(-(-n // NOISE_TILE)):
            r0 = a * NOISE_TILE
            width = min(r0 + NOISE_TILE, n) - r0
            diag[r0:r0 + width] += _generator(seed, a, a, 1).normal(0.0, sigma, size=NOISE_TILE)[:width]
    return diag


def _tile_pairs(P_rows: np.ndarray, P_cols: np.ndarray, P_vals: np.ndarray, height: int, width: int, diagonal: bool,
                sigma: float, cut: float, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of one tile whose noisy value reaches ``cut``, and those values.

    Pairs with a non-zero exact value (P, sorted by row then column) get N(0, sigma^2) added; of
    the M pairs whose exact value is 0, the number whose noise reaches the cut is Binomial(M, Q)
    with Q = P(N(0, sigma^2) >= cut), which of them is a uniform choice, and their values are the
    normal conditioned on >= cut (inverse CDF). ``diagonal``: the tile holds only r < c.
    """
    noisy = P_vals + gen.normal(0.0, sigma, size=P_vals.size)
    keep = noisy >= cut
    rows, cols, vals = [P_rows[keep]], [P_cols[keep]], [noisy[keep]]
    total = height * (height - 1) // 2 if diagonal else height * width
    q = float(ndtr(-cut / sigma))
    count = int(gen.binomial(total - P_vals.size, q)) if total > P_vals.size else 0
    if count:
        taken = set((P_rows * width + P_cols).tolist())
        chosen: list[int] = []
        while len(chosen) < count:
            r = gen.integers(0, height, size=2 * count)
            c = gen.integers(0, width, size=2 * count)
            for flat, ok in zip((r * width + c).tolist(), (c > r if diagonal else np.ones(r.size, bool)).tolist()):
                if ok and flat not in taken:
                    taken.add(flat)
                    chosen.append(flat)
                    if len(chosen) == count:
                        break
        flat = np.array(chosen, dtype=np.int64)
        u = 1.0 - gen.random(count)                                     # (0, 1]
        rows.append(flat // width)
        cols.append(flat % width)
        vals.append(-sigma * ndtri(u * q))                              # P(Z >= z) = u Q, so z >= cut
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def noisy_pairs(C_rows: sp.csr_matrix, start: int, n: int, sigma: float, cut: float,
                seed: int) -> sp.coo_matrix:
    r"""The off-diagonal pairs (i, j), start <= i < start + C_rows.shape[0] (one tile row at most), whose noisy value
    :math:`C_{ij} + z_{ij}` is at least ``cut`` (``cut`` > 0), with those values, as a COO matrix.

    ``C_rows``: the exact rows of the symmetric C (CSR). This is the same, in distribution, as
    adding N(0, sigma^2) to every pair and keeping those >= cut (:func:`_tile_pairs`), without
    drawing the noise of every zero pair. Pair {i, j} is drawn once, in tile (i // T, j // T)
    of the upper triangle (T = NOISE_TILE) from a generator keyed by (seed, tile): (i, j) and
    (j, i) get the same value, whichever block asks. ``start`` must be a multiple of T.
    """
    if start % NOISE_TILE:
        raise ValueError(f"start must be a multiple of NOISE_TILE={NOISE_TILE}, got {start}")
    if not 0 < C_rows.shape[0] <= min(NOISE_TILE, n - start) or C_rows.shape[1] != n:
        raise ValueError(f"C_rows must be 1..NOISE_TILE={NOISE_TILE} rows of the {n} columns from start={start}, "
                         f"got shape {C_rows.shape}")
    if not (sigma > 0 and cut > 0):
        raise ValueError("noisy_pairs needs sigma > 0 and cut > 0")
    T = NOISE_TILE
    a = start // T
    height = C_rows.shape[0]
    coo = C_rows.tocoo()
    order = np.lexsort((coo.col, coo.row))
    r_all, c_all, v_all = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64), coo.data[order]
    tile_of = c_all // T
    out_r, out_c, out_v = [], [], []
    for b in range(-(-n // T)):
        c0 = b * T
        width = min(c0 + T, n) - c0
        sel = tile_of == b
        r, c, v = r_all[sel], c_all[sel] - c0, v_all[sel]
        if b >= a:
            if b == a:
                upper = c > r
                r, c, v = r[upper], c[upper], v[upper]
            tr, tc, tv = _tile_pairs(r, c, v, height, width, b == a, sigma, cut, _generator(seed, a, b))
            if b == a:                                                  # mirror the strict upper triangle
                tr, tc, tv = np.r_[tr, tc], np.r_[tc, tr], np.r_[tv, tv]
        else:                                                           # tile (b, a): rows b, columns a
            t_order = np.lexsort((r, c))
            tc, tr, tv = _tile_pairs(c[t_order], r[t_order], v[t_order], T, height, False, sigma, cut,
                                     _generator(seed, b, a))
        out_r.append(tr)
        out_c.append(tc + c0)
        out_v.append(tv)
    rows = np.concatenate(out_r) if out_r else np.zeros(0, np.int64)
    return sp.coo_matrix((np.concatenate(out_v) if out_v else np.zeros(0), (rows, np.concatenate(out_c)
                          if out_c else np.zeros(0, np.int64))), shape=(height, n))


def private_item_neighbours(R: sp.csr_matrix, k: int, dp: DP) -> tuple[sp.csr_matrix, float]:
    """Each item's k best neighbours by noisy cosine (module docstring), as an items x items CSR
    (rows best first, never the item itself), and the noise scale sigma used.

    Rows are computed NOISE_TILE at a time, sparse: nothing n_items x n_items is held."""
    rng = np.random.default_rng(dp.seed)
    B = bounded_histories(R, dp.max_items_per_user, rng)
    sigma = gaussian_sigma(float(dp.epsilon), float(dp.delta), 1.0)
    n = B.shape[1]
    W = user_weighted(B)
    Bt = sp.csr_matrix(B.T)                                     # items x users
    t = float(dp.threshold)
    cut = max(t * sigma, np.finfo(float).tiny)                  # noisy values below are dropped (0 never kept)
    norms = np.sqrt(np.maximum(noisy_diagonal(W, sigma, dp.seed), 1.0 + (1.0 + t) * sigma))
    blocks = []
    for start in range(0, n, NOISE_TILE):
        stop = min(start + NOISE_TILE, n)
        pairs = noisy_pairs(sp.csr_matrix(Bt[start:stop] @ W), start, n, sigma, cut, dp.seed)
        scores = pairs.data / norms[pairs.row + start] / norms[pairs.col]
        blocks.append(top_k_sparse(pairs.row, pairs.col, scores, stop - start, n, k))
    if not blocks:
        return sp.csr_matrix((0, 0), dtype=np.float32), sigma
    return sp.csr_matrix(sp.vstack(blocks, format="csr")), sigma


def top_k_sparse(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, m: int, n: int, k: int) -> sp.csr_matrix:
    """Of the given entries (no repeated (row, col)), the k largest positive ones of each row (ties: smaller
    column), best first, as an m x n CSR."""
    keep = vals > 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.searchsorted(rows, np.arange(m))
    rank = np.arange(rows.size) - first[rows]
    top = rank < k
    indptr = np.r_[0, np.cumsum(np.bincount(rows[top], minlength=m))]
    return sp.csr_matrix((vals[top].astype(np.float32), cols[top], indptr), shape=(m, n))
