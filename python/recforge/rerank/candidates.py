"""Candidate lists shared by the re-rankers: validation, relevance scaling, greedy selection."""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge.kernels import _validation as v

PAD_ITEM = -1


def candidate_lists(items: Any, scores: Any, n: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(items int64 (m, c), scores float64 (m, c), valid mask, n) checked: -1 marks padding."""
    items = np.asarray(items)
    scores = np.asarray(scores, dtype=np.float64)
    if items.ndim != 2 or items.shape != scores.shape:
        raise ValueError(f"items and scores must be 2-D arrays of the same shape (users x candidates), "
                         f"got {items.shape} and {scores.shape}")
    if items.size and items.dtype.kind not in "iu":
        raise TypeError(f"items must be integer item codes, got dtype {items.dtype}")
    items = items.astype(np.int64)
    n = v.check_positive_int(n, "n")
    valid = items >= 0
    if not np.all(np.isfinite(scores[valid])):
        raise ValueError("scores of real candidates (items >= 0) must be finite")
    return items, scores, valid, n


def relevance(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    r"""Per-user min-max scaled scores: :math:`(s - \min_u s) / (\max_u s - \min_u s)` over the
    user's valid candidates (1 when they are all equal); padding gets 0 (callers mask it)."""
    big = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
    top = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
    span = top - big
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(span > 0, (scores - big) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(valid, rel, 0.0)


def greedy(objective, items: np.ndarray, scores: np.ndarray, valid: np.ndarray, n: int):
    """Pick n candidates per user, one step at a time: at each step the candidate with the
    highest ``objective(step, chosen_mask, last_pick)`` (m x c; ties: the earlier candidate in
    the list) among those not chosen yet. Returns (items, scores) of shape (m, n), best first in
    pick order, the original scores kept, padded with -1 / -inf."""
    m, c = items.shape
    chosen = np.zeros((m, c), dtype=bool)
    out_items = np.full((m, n), PAD_ITEM, dtype=np.int64)
    out_scores = np.full((m, n), -np.inf, dtype=np.float32)
    rows = np.arange(m)
    last = np.full(m, -1, dtype=np.int64)
    for step in range(min(n, c)):
        available = valid & ~chosen
        value = np.where(available, objective(step, chosen, last), -np.inf)
        pick = np.argmax(value, axis=1)                      # first maximum: the earlier candidate
        ok = available[rows, pick]
        chosen[rows[ok], pick[ok]] = True
        out_items[ok, step] = items[rows[ok], pick[ok]]
        out_scores[ok, step] = scores[rows[ok], pick[ok]]
        last = np.where(ok, pick, -1)
    return out_items, out_scores
