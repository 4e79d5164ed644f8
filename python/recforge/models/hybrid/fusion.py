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

Items a component cannot score. A component *knows* the items it can score from what it
learned (:func:`recforge.models.hybrid.blend.known_items`: a collaborative model the items with
training interactions, a content model the items with a non-zero vector). Component m's
statistics, ranks and N are taken over the candidates it knows, :math:`C_u \cap K_m`, and for
an item it does not know its term :math:`t_m(u, i)` (:math:`\mathrm{norm}`,
:math:`1/(k + \mathrm{rank})` or Borda points) is replaced according to ``unknown``:

- ``"share"`` (the hybrids' default): no term, and its weight is shared among the components
  that know the item, in proportion to their weights; with :math:`K(i) = \{m : i \in K_m\}`,

  .. math:: \mathrm{score}(u, i) = \frac{\sum_m |w_m|}{\sum_{m \in K(i)} |w_m|}
            \sum_{m \in K(i)} w_m\, t_m(u, i),

  so a new item only the content model knows is scored by that model alone on the blend's
  scale (as SwitchingHybrid does for cold items);
- ``"mean"`` (neutral): the mean of its terms over the candidates it knows,
  :math:`\bar t_m(u) = \frac{1}{|C_u \cap K_m|}\sum_{j \in C_u \cap K_m} t_m(u, j)` — no
  opinion counts as an average item's (0 for zscore, :math:`(N+1)/2` Borda points).

Either way an item every component knows gets the plain weighted sum, and an unknown item no
longer sinks below every item the collaborative models know, as a minimum score would make it.
An item no component knows scores 0 under ``"share"``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

NORMALIZATIONS = ("minmax", "zscore", "rank")
VOTING_METHODS = ("rrf", "borda")
UNKNOWN_RULES = ("mean", "share")


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


def weight_shares(known: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    r"""Per item: :math:`\sum_m |w_m| / \sum_{m \in K(i)} |w_m|` (0 where no component with a
    non-zero weight knows the item). ``known``: one boolean array over the items per component."""
    absw = np.abs(np.asarray(weights, dtype=np.float64))
    K = np.asarray(known, dtype=bool)
    knowing = absw @ K
    return np.divide(absw.sum(), knowing, out=np.zeros(K.shape[1]), where=knowing > 0)


def weighted_terms(blocks: Sequence[np.ndarray], candidate: np.ndarray, weights: Sequence[float], method: str,
                   known: Sequence[np.ndarray] | None = None, unknown: str = "share") -> list[np.ndarray]:
    """Each component's term of the weighted fusion (module docstring): they sum to the score.
    ``known``: per component, a boolean array over the items it can score (None: every item);
    ``unknown``: "share" or "mean", what an item a component does not know gets from it."""
    _check_blocks(blocks, weights)
    known = _known_or_all(known, blocks)
    candidate = np.asarray(candidate, dtype=bool)
    terms = [normalize_scores(S, candidate & K, method) for S, K in zip(blocks, known)]
    return _fill_unknown(terms, candidate, weights, known, unknown)


def weighted_fusion(blocks: Sequence[np.ndarray], candidate: np.ndarray, weights: Sequence[float],
                    method: str, known: Sequence[np.ndarray] | None = None, unknown: str = "share") -> np.ndarray:
    r""":math:`\sum_m w_m \mathrm{norm}(S_m)` over the components' score blocks, items a component
    does not know handled by ``unknown`` (module docstring)."""
    return np.sum(weighted_terms(blocks, candidate, weights, method, known, unknown), axis=0)


def rank_terms(blocks: Sequence[np.ndarray], candidate: np.ndarray, weights: Sequence[float], method: str,
               k: float = 60.0, known: Sequence[np.ndarray] | None = None, unknown: str = "share") -> list[np.ndarray]:
    """Each component's vote in reciprocal rank fusion (``rrf``) or Borda count (``borda``),
    ranks and N over the candidates it knows; the votes sum to the fused score."""
    if method not in VOTING_METHODS:
        raise ValueError(f"method must be one of {VOTING_METHODS}, got {method!r}")
    _check_blocks(blocks, weights)
    known = _known_or_all(known, blocks)
    candidate = np.asarray(candidate, dtype=bool)
    votes = []
    for S, K in zip(blocks, known):
        mine = candidate & K
        ranks = candidate_ranks(S, mine)
        N = mine.sum(axis=1, keepdims=True).astype(np.float64)
        votes.append(1.0 / (k + ranks) if method == "rrf" else N - ranks + 1.0)
    return _fill_unknown(votes, candidate, weights, known, unknown)


def rank_fusion(blocks: Sequence[np.ndarray], candidate: np.ndarray, weights: Sequence[float], method: str,
                k: float = 60.0, known: Sequence[np.ndarray] | None = None, unknown: str = "share") -> np.ndarray:
    """Reciprocal rank fusion (``rrf``, constant ``k``) or Borda count (``borda``)."""
    return np.sum(rank_terms(blocks, candidate, weights, method, k, known, unknown), axis=0)


def _fill_unknown(terms: list[np.ndarray], candidate: np.ndarray, weights: Sequence[float],
                  known: list[np.ndarray], unknown: str) -> list[np.ndarray]:
    """The weighted terms, with each component's term of an item it does not know replaced by
    its mean over the candidates it knows ("mean") or dropped with its weight shared ("share")."""
    if unknown not in UNKNOWN_RULES:
        raise ValueError(f"unknown must be one of {UNKNOWN_RULES}, got {unknown!r}")
    if unknown == "share":
        share = weight_shares(known, weights)
        return [float(w) * share * np.where(K, T, 0.0) for T, w, K in zip(terms, weights, known)]
    out = []
    for T, w, K in zip(terms, weights, known):
        mine = candidate & K
        count = mine.sum(axis=1, keepdims=True)
        mean = np.divide(np.where(mine, T, 0.0).sum(axis=1, keepdims=True), count,
                         out=np.zeros((T.shape[0], 1)), where=count > 0)
        out.append(float(w) * np.where(K, T, mean))
    return out


def _known_or_all(known: Sequence[np.ndarray] | None, blocks: Sequence[np.ndarray]) -> list[np.ndarray]:
    n_items = np.shape(blocks[0])[1]
    if known is None:
        return [np.ones(n_items, dtype=bool) for _ in blocks]
    if len(known) != len(blocks) or any(np.shape(K) != (n_items,) for K in known):
        raise ValueError(f"known must hold one boolean array of {n_items} items per component")
    return [np.asarray(K, dtype=bool) for K in known]


def _check_blocks(blocks: Sequence[np.ndarray], weights: Sequence[float]) -> None:
    if len(blocks) == 0:
        raise ValueError("at least one component is needed")
    if len(blocks) != len(weights):
        raise ValueError(f"one weight per component: {len(blocks)} components, {len(weights)} weights")
    shape = np.shape(blocks[0])
    if any(np.shape(b) != shape for b in blocks):
        raise ValueError("every component's score block must have the same shape")
