"""clean(): drop or merge bad and redundant rows, with a report of what went and why.

Steps, in this order (each optional step is off unless asked for):

1. rows whose value is NaN or infinite are dropped (``non_finite``);
2. rows whose value lies outside ``rating_range=(low, high)`` (inclusive) are dropped;
3. exact duplicate rows (same user, item, value and timestamp) keep their first copy;
4. repeated (user, item) pairs are merged by ``duplicates``: "last" (latest timestamp, ties:
   later row), "first", "mean", "max", "sum", or None to keep them all; a merged row takes
   the latest timestamp of its pair and sits where the pair's latest row was ("first": earliest);
5. ``implicit_threshold=t``: rows with value < t are dropped, the rest get value 1;
6. ``min_user_count`` / ``min_item_count``: iterative k-core; rows of users (items) with fewer
   rows are removed and counts recomputed until every remaining user and item qualifies;
7. ``compact=True`` drops ids left without rows and renumbers codes;
8. ``normalize`` per user: "mean" (v - mean_u), "zscore" ((v - mean_u) / std_u, population std),
   "minmax" ((v - min_u) / (max_u - min_u)). A user whose values are all equal gets 0 under
   "mean" and "zscore" and 0.5 under "minmax". The report keeps ``user_offset`` and
   ``user_scale`` so that ``v = normalized * scale + offset``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recforge.data.interactions import Interactions

DUPLICATE_POLICIES = ("last", "first", "mean", "max", "sum", None)
NORMALIZATIONS = ("mean", "zscore", "minmax", None)


@dataclass
class CleanReport:
    """Rows dropped per reason, and what the k-core and normalisation did."""

    n_input: int
    n_output: int = 0
    non_finite: int = 0
    out_of_range: int = 0
    exact_duplicates: int = 0
    repeated_pairs: int = 0
    below_threshold: int = 0
    kcore_rows: int = 0
    kcore_users: int = 0
    kcore_items: int = 0
    kcore_rounds: int = 0
    normalization: str | None = None
    user_offset: np.ndarray | None = field(default=None, repr=False)
    user_scale: np.ndarray | None = field(default=None, repr=False)

    @property
    def dropped(self) -> dict[str, int]:
        """Rows removed (or merged away) per reason."""
        return {"non_finite": self.non_finite, "out_of_range": self.out_of_range,
                "exact_duplicates": self.exact_duplicates, "repeated_pairs": self.repeated_pairs,
                "below_threshold": self.below_threshold, "kcore": self.kcore_rows}

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.dropped.items() if v]
        core = (f"; k-core removed {self.kcore_users} users, {self.kcore_items} items in "
                f"{self.kcore_rounds} rounds" if self.kcore_rows else "")
        return f"clean: {self.n_input} -> {self.n_output} rows ({', '.join(parts) or 'nothing dropped'}){core}"


def clean(inter: Interactions, *, duplicates: str | None = "last", drop_exact_duplicates: bool = True,
          rating_range: tuple[float, float] | None = None, min_user_count: int = 1,
          min_item_count: int = 1, implicit_threshold: float | None = None,
          normalize: str | None = None, compact: bool = True) -> tuple[Interactions, CleanReport]:
    """The cleaned interactions and a :class:`CleanReport` (steps in the module docstring)."""
    if not isinstance(inter, Interactions):
        raise TypeError(f"inter must be an Interactions, got {type(inter).__name__}")
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    needs_values = [name for name, v in (("rating_range", rating_range), ("implicit_threshold", implicit_threshold),
                                         ("normalize", normalize)) if v is not None]
    if needs_values and inter.values is None:
        raise ValueError(f"{needs_values[0]} needs values, and these interactions have none")
    if duplicates in ("mean", "max", "sum") and inter.values is None:
        raise ValueError(f"duplicates={duplicates!r} needs values, and these interactions have none")
    min_user_count = _check_min(min_user_count, "min_user_count")
    min_item_count = _check_min(min_item_count, "min_item_count")
    report = CleanReport(n_input=len(inter), normalization=normalize)

    if inter.values is not None:
        finite = np.isfinite(inter.values)
        report.non_finite = int((~finite).sum())
        inter = inter.select(finite) if report.non_finite else inter
    if rating_range is not None:
        low, high = _check_range(rating_range)
        inside = (inter.values >= low) & (inter.values <= high)
        report.out_of_range = int((~inside).sum())
        inter = inter.select(inside) if report.out_of_range else inter
    if drop_exact_duplicates:
        inter, report.exact_duplicates = _drop_exact_duplicates(inter)
    if duplicates is not None:
        before = len(inter)
        inter = _merge_pairs(inter, duplicates)
        report.repeated_pairs = before - len(inter)
    if implicit_threshold is not None:
        threshold = float(implicit_threshold)
        keep = inter.values >= threshold
        report.below_threshold = int((~keep).sum())
        inter = inter.select(keep).with_values(np.ones(int(keep.sum()), dtype=np.float32))
    if min_user_count > 1 or min_item_count > 1:
        inter = _kcore(inter, min_user_count, min_item_count, report)
    if compact:
        inter = inter.compact()
    if normalize is not None:
        inter, report.user_offset, report.user_scale = _normalize(inter, normalize)
    report.n_output = len(inter)
    return inter, report


def _check_min(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_range(rating_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in rating_range)
    except (TypeError, ValueError):
        raise TypeError(f"rating_range must be a pair (low, high) of numbers, got {rating_range!r}") from None
    if not low <= high:
        raise ValueError(f"rating_range must have low <= high, got {rating_range!r}")
    return low, high


def _drop_exact_duplicates(inter: Interactions) -> tuple[Interactions, int]:
    keys = [inter.items, inter.users]
    if inter.timestamps is not None:
        keys.insert(0, inter.timestamps)
    if inter.values is not None:
        keys.insert(0, inter.values)
    order = np.lexsort(keys)
    same = np.ones(max(len(inter) - 1, 0), dtype=bool)
    for col in keys:
        sorted_col = col[order]
        same &= sorted_col[1:] == sorted_col[:-1]
    n_dup = int(same.sum())
    if not n_dup:
        return inter, 0
    keep = np.ones(len(inter), dtype=bool)
    keep[order[1:][same]] = False  # stable sort: the first copy comes first and is kept
    return inter.select(keep), n_dup


def _merge_pairs(inter: Interactions, policy: str) -> Interactions:
    order = inter._pair_order(by_time=True)
    users, items = inter.users[order], inter.items[order]
    new_pair = np.r_[True, (users[1:] != users[:-1]) | (items[1:] != items[:-1])] if len(inter) else np.ones(0, bool)
    if new_pair.all():
        return inter
    starts = np.flatnonzero(new_pair)
    ends = np.r_[starts[1:], len(inter)] - 1
    representative = order[starts] if policy == "first" else order[ends]
    values = None
    if inter.values is not None:
        sorted_values = inter.values[order]
        if policy == "mean":
            sums = np.add.reduceat(sorted_values.astype(np.float64), starts)
            values = (sums / (ends - starts + 1)).astype(np.float32)
        elif policy == "sum":
            values = np.add.reduceat(sorted_values.astype(np.float64), starts).astype(np.float32)
        elif policy == "max":
            values = np.maximum.reduceat(sorted_values, starts)
        else:
            values = inter.values[representative]
    times = None
    if inter.timestamps is not None:
        times = inter.timestamps[order[ends]] if policy != "first" else inter.timestamps[representative]
    position = np.argsort(representative, kind="stable")
    return Interactions._trusted(
        inter.users[representative][position], inter.items[representative][position],
        None if values is None else values[position], None if times is None else times[position],
        inter.user_ids, inter.item_ids, inter.item_metadata)


def _kcore(inter: Interactions, min_user: int, min_item: int, report: CleanReport) -> Interactions:
    had_users = inter.user_counts() > 0
    had_items = inter.item_counts() > 0
    start = len(inter)
    while True:
        user_ok = inter.user_counts() >= min_user
        item_ok = inter.item_counts() >= min_item
        keep = user_ok[inter.users] & item_ok[inter.items]
        if keep.all():
            break
        report.kcore_rounds += 1
        inter = inter.select(keep)
    report.kcore_rows = start - len(inter)
    report.kcore_users = int((had_users & (inter.user_counts() == 0)).sum())
    report.kcore_items = int((had_items & (inter.item_counts() == 0)).sum())
    return inter


def _normalize(inter: Interactions, how: str) -> tuple[Interactions, np.ndarray, np.ndarray]:
    n = inter.n_users
    counts = inter.user_counts()
    v = inter.values.astype(np.float64)
    safe = np.maximum(counts, 1)
    mean = np.bincount(inter.users, weights=v, minlength=n) / safe
    if how == "mean":
        offset, scale = mean, np.ones(n)
    elif how == "zscore":
        var = np.bincount(inter.users, weights=(v - mean[inter.users]) ** 2, minlength=n) / safe
        std = np.sqrt(var)
        offset, scale = mean, np.where(std > 0, std, 1.0)
    else:
        low = np.full(n, np.inf)
        high = np.full(n, -np.inf)
        np.minimum.at(low, inter.users, v)
        np.maximum.at(high, inter.users, v)
        span = high - low
        constant = ~(span > 0)
        offset = np.where(constant, low - 0.5, low)
        scale = np.where(constant, 1.0, span)
        offset[counts == 0], scale[counts == 0] = 0.0, 1.0
    normalized = (v - offset[inter.users]) / scale[inter.users]
    return inter.with_values(normalized.astype(np.float32)), offset, scale
