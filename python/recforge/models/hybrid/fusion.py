r"""Score normalisation and rank fusion shared by the hybrids (pure numpy).

Every function works on a dense block of scores ``S`` (users x items) and a boolean mask
``candidate`` of the same shape: the items a user may be recommended (not in their history).
Statistics and ranks are taken over the candidates only, then applied to every item, so a
seen item gets the value it would have among the candidates.

Ranks (1 = best) with ties sharing the average position: for item i of a row with candidate
scores :math:`c`,

.. math:: \mathrm{rank}(i) = 1 + |\{j : c_j > s_i\}| + \tfrac12 |\{j \ne i : c_j = s_i\}|.

Normalisations (``normalize``):

- ``minmax``: :math:`(s - \min c) / (\max c - \min c)` (0 when all candidates are equal);
- ``zscore``: :math:`(s - \bar c) / \sigma_c` (0 when :math:`\sigma_c = 0`);
- ``rank``: :math:`(N - \mathrm{rank} + 1) / N` with N candidates: 1 for the best, 1/N the worst.

Fusions of M components with weights :math:`w_m`:

- weighted: :math:`\sum_m w_m\, \mathrm{norm}(s^{(m)})`;
- reciprocal rank fusion (Cormack et al., 2009): :math:`\sum_m w_m / (k + \mathrm{rank}_m(i))`;
- Borda count: :math:`\sum_m w_m (N - \mathrm{rank}_m(i) + 1)` (the best candidate earns N points).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

NORMALIZATIONS = ("minmax", "zscore", "rank")
VOTING_METHODS = ("rrf", "borda")


def candidate_ranks(S: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Average-tie ranks (1 = best) of every entry of each row among that row's candidates
    (float64, same shape as S). Rows without candidates get rank 1 everywhere."""
    S = np.asarray(S, dtype=np.float64)
    out = np.empty_like(S)
    for r in range(S.shape[0]):
        cand = np.sort(S[r, candidate[r]])
        s = S[r]
        below_or_equal = np.searchsorted(cand, s, side="right")
        below = np.searchsorted(cand, s, side="left")
        greater = cand.size - below_or_equal
        equal = below_or_equal - below - candidate[r]          # ties with other candidates only
        out[r] = 1.0 + greater + 0.5 * equal
    return out


def normalize_scores(S: np.ndarray, candidate: np.ndarray, method: str) -> np.ndarray:
    """Each row of S normalised over its candidates by ``method`` (module docstring)."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {method!r}")
    S = np.asarray(S, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=bool)
    if method == "rank":
        N = candidate.sum(axis=1, keepdims=True).astype(np.float64)
        return np.divide(N - candidate_ranks(S, candidate) + 1.0, N, out=np.zeros_like(S), where=N > 0)
    masked = np.where(candidate, S, np.nan)
    has = candidate.any(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        if method == "minmax":
            lo = np.where(has, np.nanmin(np.where(has, masked, 0.0), axis=1, keepdims=True), 0.0)
            hi = np.where(has, np.nanmax(np.where(has, masked, 0.0), axis=1, keepdims=True), 0.0)
            span = hi - lo
            return np.divide(S - lo, span, out=np.zeros_like(S), where=span > 0)
        mean = np.where(has, np.nanmean(np.where(has, masked, 0.0), axis=1, keepdims=True), 0.0)
        std = np.where(has, np.nanstd(np.where(has, masked, 0.0), axis=1, keepdims=True), 0.0)
    return np.divide(S - mean, std, out=np.zeros_like(S), where=std > 0)


def weighted_fusion(blocks: Sequence[np.ndarray], candidate: np.ndarray, weights: Sequence[float],
                    method: str) -> np.ndarray:
    """:math:`\\sum_m w_m \\mathrm{norm}(S_m)` over the components' score blocks."""
    _check_blocks(blocks, weights)
    out = np.zeros(np.shape(blocks[0]), dtype=np.float64)
    for S, w in zip(blocks, weights):
        out += float(w) * normalize_scores(S, candidate, method)
    return out


def rank_fusion(blocks: Sequence[np.ndarray], candidate: np.ndarray, weights: Sequence[float], method: str,
                k: float = 60.0) -> np.ndarray:
    """Reciprocal rank fusion (``rrf``, constant ``k``) or Borda count (``borda``)."""
    if method not in VOTING_METHODS:
        raise ValueError(f"method must be one of {VOTING_METHODS}, got {method!r}")
    _check_blocks(blocks, weights)
    candidate = np.asarray(candidate, dtype=bool)
    N = candidate.sum(axis=1, keepdims=True).astype(np.float64)
    out = np.zeros(np.shape(blocks[0]), dtype=np.float64)
    for S, w in zip(blocks, weights):
        ranks = candidate_ranks(S, candidate)
        out += float(w) * (1.0 / (k + ranks) if method == "rrf" else N - ranks + 1.0)
    return out


def _check_blocks(blocks: Sequence[np.ndarray], weights: Sequence[float]) -> None:
    if len(blocks) == 0:
        raise ValueError("at least one component is needed")
    if len(blocks) != len(weights):
        raise ValueError(f"one weight per component: {len(blocks)} components, {len(weights)} weights")
    shape = np.shape(blocks[0])
    if any(np.shape(b) != shape for b in blocks):
        raise ValueError("every component's score block must have the same shape")
