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

**Memory.** The n x n matrix is never held: rows are processed in blocks of :data:`NOISE_TILE`
items (exact co-occurrence rows of the block, their noise, threshold, cosine, top-k), about
``4 * NOISE_TILE * n_items * 8`` bytes at a time (41k items: 0.7 GB instead of 13 GB).

**Noise.** The pair noise is drawn per tile of :data:`NOISE_TILE` x :data:`NOISE_TILE` pairs of the
upper triangle, from a generator keyed by (seed, tile row, tile column) (:func:`pair_noise`):
each unordered pair {i, j} gets exactly one draw, used for (i, j) and (j, i) alike, the same
whichever block asks for it, so the result depends on the seed only.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

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


def _tile(seed: int, a: int, b: int, sigma: float) -> np.ndarray:
    """The noise of tile (a, b), a <= b: NOISE_TILE^2 independent N(0, sigma^2) draws."""
    gen = np.random.Generator(np.random.Philox(np.random.SeedSequence([int(seed), 0x9E3779B9, a, b])))
    return gen.normal(0.0, sigma, size=(NOISE_TILE, NOISE_TILE))


def pair_noise(start: int, stop: int, n: int, sigma: float, seed: int) -> np.ndarray:
    """Noise of the pairs (i, j), start <= i < stop, 0 <= j < n, as a (stop - start) x n array.

    The noise of {i, j} is entry (i mod T, j mod T) of tile (i // T, j // T) for i <= j (T =
    NOISE_TILE), the same value for (j, i): symmetric, one draw per unordered pair, independent of
    how the rows are blocked. ``start`` must be a multiple of NOISE_TILE.
    """
    if start % NOISE_TILE:
        raise ValueError(f"start must be a multiple of NOISE_TILE={NOISE_TILE}, got {start}")
    out = np.zeros((stop - start, n))
    if sigma == 0:
        return out
    n_tiles = -(-n // NOISE_TILE)
    for a in range(start // NOISE_TILE, -(-stop // NOISE_TILE)):
        r0 = a * NOISE_TILE
        rows = slice(r0 - start, min(r0 + NOISE_TILE, stop) - start)
        height = rows.stop - rows.start
        for b in range(n_tiles):
            c0 = b * NOISE_TILE
            width = min(c0 + NOISE_TILE, n) - c0
            if b > a:
                block = _tile(seed, a, b, sigma)
            elif b < a:
                block = _tile(seed, b, a, sigma).T
            else:
                upper = np.triu(_tile(seed, a, a, sigma))
                block = upper + np.triu(upper, 1).T
            out[rows, c0:c0 + width] = block[:height, :width]
    return out


def noisy_diagonal(W: sp.csr_matrix, sigma: float, seed: int) -> np.ndarray:
    r"""The noisy norms :math:`\tilde C_{ii} = \sum_u w_u [i \in I_u] + z_{ii}` (the diagonal of :func:`pair_noise`)."""
    n = W.shape[1]
    diag = np.asarray(W.sum(axis=0)).reshape(-1).astype(np.float64)
    if sigma > 0:
        for a in range(-(-n // NOISE_TILE)):
            r0 = a * NOISE_TILE
            width = min(r0 + NOISE_TILE, n) - r0
            diag[r0:r0 + width] += np.diag(_tile(seed, a, a, sigma))[:width]
    return diag


def private_item_neighbours(R: sp.csr_matrix, k: int, dp: DP) -> tuple[sp.csr_matrix, float]:
    """Each item's k best neighbours by noisy cosine (module docstring), as an items x items CSR
    (rows best first, never the item itself), and the noise scale sigma used.

    Rows are computed NOISE_TILE at a time; nothing n_items x n_items is held."""
    rng = np.random.default_rng(dp.seed)
    B = bounded_histories(R, dp.max_items_per_user, rng)
    sigma = gaussian_sigma(float(dp.epsilon), float(dp.delta), 1.0)
    n = B.shape[1]
    W = user_weighted(B)
    Bt = sp.csr_matrix(B.T)                                     # items x users
    t = float(dp.threshold)
    norms = np.sqrt(np.maximum(noisy_diagonal(W, sigma, dp.seed), 1.0 + (1.0 + t) * sigma))
    blocks = []
    for start in range(0, n, NOISE_TILE):
        stop = min(start + NOISE_TILE, n)
        C = np.asarray((Bt[start:stop] @ W).toarray(), dtype=np.float64)
        C += pair_noise(start, stop, n, sigma, dp.seed)
        C[C < t * sigma] = 0.0
        C /= norms[start:stop, None]
        C /= norms[None, :]
        C[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        blocks.append(top_k_rows(C, k, n))
    if not blocks:
        return sp.csr_matrix((0, 0), dtype=np.float32), sigma
    return sp.csr_matrix(sp.vstack(blocks, format="csr")), sigma


def top_k_rows(S: np.ndarray, k: int, n_columns: int | None = None) -> sp.csr_matrix:
    """The k largest finite entries of each row of ``S`` (ties: smaller column), best first, as a
    CSR with ``n_columns`` columns (default: square); entries that are exactly 0 are dropped (as
    the kernels do). ``k`` is capped at n_columns - 1 (an item is never its own neighbour)."""
    m, width = S.shape
    n = width if n_columns is None else n_columns
    k = min(k, max(n - 1, 0), width)
    if k == 0 or m == 0:
        return sp.csr_matrix((m, n), dtype=np.float32)
    kth = -np.partition(-S, k - 1, axis=1)[:, k - 1:k]          # each row's k-th largest value
    above = S > kth
    tied = S == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))  # ties broken by smaller column
    rows, cols = np.nonzero(chosen)
    vals = S[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    keep = np.isfinite(vals) & (vals != 0)
    indptr = np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=m))]
    return sp.csr_matrix((vals[keep].astype(np.float32), cols[keep], indptr), shape=(m, n))
