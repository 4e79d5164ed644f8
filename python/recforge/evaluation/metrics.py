r"""Evaluation metrics: ranking accuracy, rating error and beyond-accuracy measures.

Ranking metrics share one signature, ``metric(recommended, relevant, k, *, per_user=False)``:

- ``recommended``: an integer array users x n of item codes, best first, ``-1`` for padding.
- ``relevant``: a users x items scipy sparse matrix (or anything with ``to_csr()``) of the
  held-out items; every stored non-zero entry is relevant. Its values are the graded
  relevance used as NDCG gains (all 1 for binary data); other metrics ignore them.
- ``k``: the cut-off (an integer >= 1). Lists shorter than ``k`` count as padded with ``-1``.

Conventions (pinned by tests):

- Each metric is computed per user and averaged over users with at least one relevant item;
  users with none are left out of the mean (``NaN`` in ``per_user=True`` output). A call in
  which no user has a relevant item raises ValueError.
- Padding (``-1``) is a miss that still takes one of the ``k`` places.
- An item repeated in a list counts as a hit only at its first (best) position; later
  repeats are misses that still take their place. (A list can thus never score more than
  one hit per relevant item.)
- Ranks are 1-based: the first item of a list has rank 1.

With :math:`h_i \in \{0, 1\}` the hit at rank i, :math:`H = \sum_{i \le k} h_i` and
:math:`R` the user's relevant set:

- precision@k :math:`= H / k`, recall@k :math:`= H / |R|`,
  F1@k :math:`= 2PR/(P+R)` (0 when P+R = 0), hit_rate@k :math:`= [H > 0]`
- NDCG@k :math:`= \mathrm{DCG}/\mathrm{IDCG}`, :math:`\mathrm{DCG} = \sum_{i\le k}
  g_i / \log_2(i+1)` with :math:`g_i` the relevance value of the item at rank i (0 for a
  miss); IDCG is the DCG of the user's min(k, |R|) largest relevance values in order
- MAP@k :math:`= \frac{1}{\min(k, |R|)} \sum_{i \le k} h_i \cdot \mathrm{precision@}i`
- MRR@k :math:`= 1 / \text{rank of the first hit}` within k, 0 when there is none
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.kernels import _validation as v

__all__ = [
    "precision_at_k", "recall_at_k", "f1_at_k", "hit_rate_at_k", "ndcg_at_k", "map_at_k",
    "mrr_at_k", "auc", "rmse", "mae", "coverage", "diversity", "novelty", "gini",
    "average_popularity",
]


# ----------------------------------------------------------------------------- inputs

def as_interaction_csr(data: Any, name: str) -> sp.csr_matrix:
    """A canonical users x items CSR of ``data``: a scipy sparse matrix or anything with ``to_csr()``."""
    if not sp.issparse(data) and hasattr(data, "to_csr"):
        data = data.to_csr()
    X = v.as_csr(data, name)
    if X.nnz and X.data.min() < 0:
        raise ValueError(f"{name} must not hold negative values (they are relevance/interaction weights)")
    return X


def check_recommended(recommended: Any, n_items: int | None = None, name: str = "recommended") -> np.ndarray:
    """A 2-D int64 array of item codes in [-1, n_items); -1 is padding."""
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array users x n of item codes, got {rec.ndim} dimension(s)")
    if rec.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer item codes (-1 for padding), got dtype {rec.dtype}")
    rec = rec.astype(np.int64, copy=False)
    if rec.size:
        low, high = int(rec.min()), int(rec.max())
        if low < -1:
            raise ValueError(f"{name} holds item code {low}; codes must be >= 0, or -1 for padding")
        if n_items is not None and high >= n_items:
            raise ValueError(f"{name} holds item code {high}, outside the {n_items} items of the catalogue")
    return rec


def first_occurrence(rec: np.ndarray) -> np.ndarray:
    """Boolean mask of entries that are valid (not -1) and not a repeat of an earlier entry in their row."""
    if rec.shape[1] <= 1:
        return rec >= 0
    order = np.argsort(rec, axis=1, kind="stable")
    ordered = np.take_along_axis(rec, order, axis=1)
    repeat = np.zeros(rec.shape, dtype=bool)
    # stable sort: within a run of equal codes the earliest position comes first and is kept
    np.put_along_axis(repeat, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
    return (rec >= 0) & ~repeat


def _cutoff(rec: np.ndarray, k: Any) -> tuple[np.ndarray, int]:
    k = v.check_positive_int(k, "k")
    return rec[:, :k], k


# ----------------------------------------------------------------------------- ranking

@dataclass
class Matches:
    """Where the lists of ``recommended`` hit ``relevant`` (computed once, sliced for every k)."""

    hits: np.ndarray        # users x n bool: first occurrence of a relevant item
    gains: np.ndarray       # users x n float: its relevance value (0 for a miss)
    n_relevant: np.ndarray  # users: |R|
    relevant: sp.csr_matrix


def match(recommended: Any, relevant: Any) -> Matches:
    """Hits and gains of every list position; one vectorised binary search over (user, item) keys."""
    relevant = as_interaction_csr(relevant, "relevant")
    n_users, n_items = relevant.shape
    rec = check_recommended(recommended, n_items)
    if rec.shape[0] != n_users:
        raise ValueError(f"recommended has {rec.shape[0]} rows but relevant has {n_users} users; "
                         "row u of both must be the same user")
    n_relevant = np.diff(relevant.indptr).astype(np.int64)
    # canonical CSR: keys user * n_items + item are sorted, so one searchsorted finds every hit
    rel_keys = np.repeat(np.arange(n_users, dtype=np.int64), n_relevant) * n_items + relevant.indices
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + rec
    if rel_keys.size:
        pos = np.minimum(np.searchsorted(rel_keys, rec_keys), rel_keys.size - 1)
        found = (rel_keys[pos] == rec_keys) & first_occurrence(rec)
        gains = np.where(found, relevant.data[pos], 0.0)
    else:
        found = np.zeros(rec.shape, dtype=bool)
        gains = np.zeros(rec.shape)
    return Matches(found, gains.astype(np.float64, copy=False), n_relevant, relevant)


def _finish(values: np.ndarray, n_relevant: np.ndarray, per_user: bool, name: str):
    values = np.where(n_relevant > 0, values, np.nan)
    if per_user:
        return values
    if not np.any(n_relevant > 0):
        raise ValueError(f"{name}: no user has a relevant item (relevant is empty)")
    return float(np.nanmean(values))


def precision_per_user(m: Matches, k: int) -> np.ndarray:
    return m.hits[:, :k].sum(axis=1) / k


def recall_per_user(m: Matches, k: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return m.hits[:, :k].sum(axis=1) / m.n_relevant


def f1_per_user(m: Matches, k: int) -> np.ndarray:
    p, r = precision_per_user(m, k), recall_per_user(m, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)


def hit_rate_per_user(m: Matches, k: int) -> np.ndarray:
    return m.hits[:, :k].any(axis=1).astype(np.float64)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ideal_dcg(relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """Per user, the DCG of the min(k, |R|) largest relevance values placed at ranks 1, 2, ..."""
    n_users = relevant.shape[0]
    counts = np.diff(relevant.indptr)
    rows = np.repeat(np.arange(n_users), counts)
    order = np.lexsort((-relevant.data, rows))           # by user, then relevance descending
    rank = np.arange(relevant.nnz) - relevant.indptr[rows]  # 0-based place within the user
    keep = rank < k
    disc = _discounts(k)
    return np.bincount(rows[keep], weights=relevant.data[order][keep] * disc[rank[keep]], minlength=n_users)


def ndcg_per_user(m: Matches, k: int) -> np.ndarray:
    width = min(k, m.gains.shape[1])
    dcg = m.gains[:, :width] @ _discounts(width)
    with np.errstate(invalid="ignore", divide="ignore"):
        return dcg / ideal_dcg(m.relevant, k)


def map_per_user(m: Matches, k: int) -> np.ndarray:
    hits = m.hits[:, :k]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (precision_at_i * hits).sum(axis=1) / np.minimum(k, m.n_relevant)


def mrr_per_user(m: Matches, k: int) -> np.ndarray:
    hits = m.hits[:, :k]
    if hits.shape[1] == 0:
        return np.zeros(hits.shape[0])
    first = np.argmax(hits, axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


RANKING = {
    "precision": precision_per_user, "recall": recall_per_user, "f1": f1_per_user,
    "hit_rate": hit_rate_per_user, "ndcg": ndcg_per_user, "map": map_per_user, "mrr": mrr_per_user,
}


def _ranking(name: str, recommended: Any, relevant: Any, k: Any, per_user: bool):
    k = v.check_positive_int(k, "k")
    m = match(np.asarray(recommended)[:, :k] if np.ndim(recommended) == 2 else recommended, relevant)
    return _finish(RANKING[name](m, k), m.n_relevant, per_user, f"{name}@{k}")


def precision_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    """precision@k = hits / k, averaged over users with a relevant item (see the module conventions)."""
    return _ranking("precision", recommended, relevant, k, per_user)


def recall_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    """recall@k = hits / |R|, averaged over users with a relevant item."""
    return _ranking("recall", recommended, relevant, k, per_user)


def f1_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    """F1@k = 2PR/(P+R) per user from precision@k and recall@k (0 when P+R = 0), then averaged."""
    return _ranking("f1", recommended, relevant, k, per_user)


def hit_rate_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    """hit_rate@k = 1 when any of the first k items is relevant, else 0; averaged over users."""
    return _ranking("hit_rate", recommended, relevant, k, per_user)


def ndcg_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    r"""NDCG@k = DCG/IDCG, DCG = :math:`\sum_{i \le k} g_i / \log_2(i+1)` (linear gain = relevance value).

    IDCG places the user's min(k, |R|) largest relevance values at ranks 1.. (the same
    conventions as scikit-learn's ``ndcg_score`` without ties).
    """
    return _ranking("ndcg", recommended, relevant, k, per_user)


def map_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    r"""MAP@k: :math:`\frac{1}{\min(k,|R|)} \sum_{i\le k} h_i\,\mathrm{precision@}i`, averaged over users."""
    return _ranking("map", recommended, relevant, k, per_user)


def mrr_at_k(recommended: Any, relevant: Any, k: int, *, per_user: bool = False):
    """MRR@k: 1 / rank of the first hit within the first k items (0 when none), averaged over users."""
    return _ranking("mrr", recommended, relevant, k, per_user)


# ----------------------------------------------------------------------------- AUC

def auc(y_true: Any, y_score: Any, groups: Any = None, *, per_group: bool = False):
    r"""Area under the ROC curve: the probability that a positive outranks a negative.

    :math:`\mathrm{AUC} = \frac{\sum_{p \in P} \mathrm{rank}(p) - |P|(|P|+1)/2}{|P|\,|N|}`
    (Mann-Whitney U) with ranks by ascending score, tied scores sharing their average rank,
    i.e. a tied positive/negative pair counts 1/2 (as scikit-learn's ``roc_auc_score``).

    ``y_true``: 0/1 labels; ``y_score``: real scores (higher = more relevant). With ``groups``
    (e.g. a user code per pair) the AUC is computed per group and averaged over the groups that
    have both a positive and a negative; ``per_group=True`` returns the per-group values (sorted
    by group id, NaN for groups without both classes) instead.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 1 or y_score.ndim != 1 or y_true.shape != y_score.shape:
        raise ValueError(f"y_true and y_score must be 1-D of the same length, got shapes "
                         f"{y_true.shape} and {y_score.shape}")
    if y_true.size and not np.all((y_true == 0) | (y_true == 1)):
        raise ValueError("y_true must hold binary labels 0/1")
    if not np.all(np.isfinite(y_score)):
        raise ValueError("y_score contains NaN or infinite values")
    if groups is None:
        codes, n_groups = np.zeros(y_true.size, dtype=np.int64), 1
    else:
        groups = np.asarray(groups)
        if groups.shape != y_true.shape:
            raise ValueError(f"groups must have the shape of y_true {y_true.shape}, got {groups.shape}")
        _, codes = np.unique(groups, return_inverse=True)
        codes = codes.ravel()
        n_groups = int(codes.max()) + 1 if codes.size else 0
    positive = y_true.astype(bool)
    order = np.lexsort((y_score, codes))
    g, s = codes[order], y_score[order]
    n = g.size
    group_start = np.searchsorted(g, g, side="left")
    rank = np.arange(n) - group_start + 1.0
    # tie blocks: same group and same score share the mean of their ranks
    new_block = np.ones(n, dtype=bool)
    new_block[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    block = np.cumsum(new_block) - 1
    first = np.flatnonzero(new_block)
    last = np.append(first[1:], n) - 1
    mean_rank = ((rank[first] + rank[last]) / 2.0)[block]
    pos_sorted = positive[order]
    n_pos = np.bincount(g, weights=pos_sorted, minlength=n_groups)
    n_all = np.bincount(g, minlength=n_groups)
    rank_sum = np.bincount(g, weights=np.where(pos_sorted, mean_rank, 0.0), minlength=n_groups)
    n_neg = n_all - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where((n_pos > 0) & (n_neg > 0),
                          (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg), np.nan)
    if per_group:
        return values
    if not np.any(np.isfinite(values)):
        raise ValueError("auc needs at least one group with both a positive and a negative label")
    return float(np.nanmean(values))


# ----------------------------------------------------------------------------- rating error

def _rating_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of the same length, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("y_true is empty")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError("y_true and y_pred must be finite (no NaN or infinity)")
    return y_true, y_pred


def rmse(y_true: Any, y_pred: Any) -> float:
    r"""Root mean squared error :math:`\sqrt{\frac{1}{n}\sum (y - \hat y)^2}`."""
    y_true, y_pred = _rating_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true: Any, y_pred: Any) -> float:
    r"""Mean absolute error :math:`\frac{1}{n}\sum |y - \hat y|`."""
    y_true, y_pred = _rating_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


# ----------------------------------------------------------------------------- beyond accuracy

def _lists(recommended: Any, k: int | None, n_items: int | None) -> np.ndarray:
    rec = check_recommended(recommended, n_items)
    if k is not None:
        rec, _ = _cutoff(rec, k)
    return rec


def exposure_counts(recommended: Any, n_items: int, k: int | None = None) -> np.ndarray:
    """How many lists each item appears in (a repeat within one list counts once)."""
    rec = _lists(recommended, k, n_items)
    return np.bincount(rec[first_occurrence(rec)], minlength=n_items)


def coverage_from_counts(counts: np.ndarray) -> float:
    return float(np.count_nonzero(counts) / counts.size) if counts.size else float("nan")


def gini_from_counts(counts: np.ndarray) -> float:
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = x.size, x.sum()
    if total <= 0:
        raise ValueError("gini: the recommendation lists hold no items")
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


def _check_n_items(n_items: Any) -> int:
    return v.check_positive_int(n_items, "n_items")


def coverage(recommended: Any, n_items: int, k: int | None = None) -> float:
    """Catalogue coverage: |distinct items in the first k places of any list| / n_items.

    ``k=None`` uses whole lists; padding (-1) is ignored.
    """
    n_items = _check_n_items(n_items)
    return coverage_from_counts(exposure_counts(recommended, n_items, k))


def gini(recommended: Any, n_items: int, k: int | None = None) -> float:
    r"""Gini index of item exposure over the whole catalogue (0 = every item shown equally often,
    -> 1 = everything concentrated on one item).

    With :math:`x_1 \le \dots \le x_n` the number of lists showing each of the n items
    (items never shown count as 0): :math:`G = \sum_i (2i - n - 1)\,x_i / (n \sum_i x_i)`.
    """
    n_items = _check_n_items(n_items)
    return gini_from_counts(exposure_counts(recommended, n_items, k))


def item_popularity(train: Any) -> tuple[np.ndarray, int]:
    """(number of distinct users who interacted with each item, number of users) of a train matrix."""
    X = as_interaction_csr(train, "train")
    return np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64), X.shape[0]


def _per_list_mean(rec: np.ndarray, item_values: np.ndarray) -> np.ndarray:
    valid = first_occurrence(rec)
    total = np.where(valid, item_values[np.maximum(rec, 0)], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / valid.sum(axis=1)


def novelty_per_user(rec: np.ndarray, popularity: np.ndarray, n_users: int) -> np.ndarray:
    self_information = -np.log2(np.maximum(popularity, 1.0) / n_users)
    return _per_list_mean(rec, self_information)


def _mean_over_lists(values: np.ndarray, per_user: bool, name: str):
    if per_user:
        return values
    if not np.any(np.isfinite(values)):
        raise ValueError(f"{name}: every recommendation list is empty")
    return float(np.nanmean(values))


def novelty(recommended: Any, train: Any, k: int | None = None, *, per_user: bool = False):
    r"""Mean self-information of the recommended items, :math:`-\log_2 p_i` with
    :math:`p_i = \mathrm{users}(i) / |U|` the fraction of train users who interacted with i.

    Averaged over the distinct items of each list (padding ignored), then over lists that hold
    at least one item. Items no train user interacted with count as having one user (so the
    value stays finite: :math:`\log_2 |U|`).
    """
    popularity, n_users = item_popularity(train)
    rec = _lists(recommended, k, popularity.size)
    return _mean_over_lists(novelty_per_user(rec, popularity, n_users), per_user, "novelty")


def average_popularity(recommended: Any, train: Any, k: int | None = None, *, per_user: bool = False):
    """Average recommendation popularity (ARP): the mean, over the distinct items of a list, of
    the number of train users who interacted with each; averaged over non-empty lists."""
    popularity, _ = item_popularity(train)
    rec = _lists(recommended, k, popularity.size)
    return _mean_over_lists(_per_list_mean(rec, popularity), per_user, "average_popularity")


def _ild_from_vectors(rec: np.ndarray, valid: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    # sum over pairs i<j of cos(i, j) = (|sum v|^2 - sum |v|^2) / 2 for unit vectors v
    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors), where=norms[:, None] > 0)
    out = np.empty(rec.shape[0])
    step = max(1, 2 ** 22 // max(1, rec.shape[1] * vectors.shape[1]))
    for start in range(0, rec.shape[0], step):  # chunks bound memory to ~32 MB, not a per-user loop
        r, ok = rec[start:start + step], valid[start:start + step]
        V = unit[np.maximum(r, 0)] * ok[..., None]
        total = V.sum(axis=1)
        pair_sum = (np.einsum("ud,ud->u", total, total) - np.einsum("und,und->u", V, V)) / 2.0
        n = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + step] = np.where(n >= 2, 1.0 - pair_sum / (n * (n - 1) / 2.0), np.nan)
    return out


def _ild_from_similarity(rec: np.ndarray, valid: np.ndarray, S: sp.csr_matrix) -> np.ndarray:
    n_items = S.shape[0]
    keys = np.repeat(np.arange(n_items, dtype=np.int64), np.diff(S.indptr)) * n_items + S.indices
    a, b = np.triu_indices(rec.shape[1], k=1)

    def lookup(i, j):
        q = i * n_items + j
        if keys.size == 0:
            return np.zeros(q.shape)
        pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
        return np.where(keys[pos] == q, S.data[pos], 0.0)

    i, j = np.maximum(rec[:, a], 0), np.maximum(rec[:, b], 0)
    both = valid[:, a] & valid[:, b]
    sim = (lookup(i, j) + lookup(j, i)) / 2.0
    n_pairs = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pairs > 0, 1.0 - np.where(both, sim, 0.0).sum(axis=1) / n_pairs, np.nan)


def diversity_per_user(rec: np.ndarray, item_vectors: Any = None, similarity: Any = None) -> np.ndarray:
    valid = first_occurrence(rec)
    if (item_vectors is None) == (similarity is None):
        raise ValueError("diversity needs exactly one of item_vectors (items x d) or similarity (items x items)")
    if item_vectors is not None:
        vectors = np.asarray(item_vectors, dtype=np.float64)
        if vectors.ndim != 2:
            raise ValueError(f"item_vectors must be 2-D items x d, got {vectors.ndim} dimension(s)")
        if not np.all(np.isfinite(vectors)):
            raise ValueError("item_vectors contains NaN or infinite values")
        if rec.size and rec.max() >= vectors.shape[0]:
            raise ValueError(f"recommended holds item code {rec.max()} but item_vectors has {vectors.shape[0]} rows")
        return _ild_from_vectors(rec, valid, vectors)
    S = v.as_csr(similarity, "similarity").astype(np.float64)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"similarity must be square items x items, got shape {S.shape}")
    if rec.size and rec.max() >= S.shape[0]:
        raise ValueError(f"recommended holds item code {rec.max()} but similarity has {S.shape[0]} items")
    return _ild_from_similarity(rec, valid, S)


def diversity(recommended: Any, k: int | None = None, *, item_vectors: Any = None, similarity: Any = None,
              per_user: bool = False):
    r"""Intra-list diversity: the mean dissimilarity :math:`1 - s(i, j)` over the pairs of distinct
    items of each list, :math:`\mathrm{ILD} = 1 - \frac{2}{L(L-1)} \sum_{a<b} s(i_a, i_b)`,
    averaged over lists with at least two distinct items (padding and repeats are dropped first).

    :math:`s` is the cosine of rows of ``item_vectors`` (items x d; a zero vector has cosine 0
    with everything), or read from an items x items ``similarity`` matrix as
    :math:`(S_{ij} + S_{ji})/2`, missing entries counting as 0.
    """
    rec = _lists(recommended, k, None)
    return _mean_over_lists(diversity_per_user(rec, item_vectors, similarity), per_user, "diversity")
