"""Train/test splits of an Interactions; all seeded, all returning ``(train, test)`` plus a report.

Every function returns a :class:`SplitResult`: it unpacks as ``train, test = ...`` and carries
``.report`` (a :class:`SplitReport`). ``train`` and ``test`` share the input's id vocabularies
(same codes, same ``to_csr()`` shape). Test rows whose user or item has no row in train are
counted in the report and, with ``drop_unseen=True`` (the default), removed from test.

* ``random(inter, frac, by_user=False, seed=...)``: ``round(frac * n)`` random rows go to test;
  ``by_user=True`` holds out ``round(frac * n_u)`` random rows of every user instead.
* ``leave_last_out(inter, n=1)``: each user's last ``n`` rows by timestamp (ties: later row is
  later) go to test, always leaving ``min_train`` rows in train.
* ``temporal(inter, cutoff=...)``: rows with ``timestamp >= cutoff`` go to test; or
  ``temporal(inter, frac=...)``: the latest ``round(frac * n)`` rows (ties: later row is later).
* ``kfold(inter, k, by="rating")``: Surprise-style, rows shuffled and cut into k folds (sizes
  differ by at most one); ``by="user"`` (``user_kfold``): LensKit-style, users shuffled and cut
  into k groups, and from each test user ``holdout`` random rows (a count, or a fraction) go to
  test, always leaving one in train. Both yield k SplitResults lazily.
* ``predefined(train, test)``: two separately loaded sets re-coded onto one shared vocabulary.
* ``recommenders_stratified(inter, ratio=0.75, seed=42)``: microsoft/recommenders'
  ``python_stratified_split`` row for row (its own draw and rounding, below), so that their
  published figures can be compared on the very same train/test split.

Rounding is half-up: ``round(x) = floor(x + 0.5)``, except in ``recommenders_stratified``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from recforge.data.idmap import IdMap
from recforge.data.interactions import Interactions

__all__ = ["SplitReport", "SplitResult", "random", "leave_last_out", "temporal", "kfold", "user_kfold",
           "predefined", "recommenders_stratified"]


@dataclass
class SplitReport:
    """Counts of one split. ``unseen_*``: distinct test users/items without a train row."""

    method: str
    n_train: int
    n_test: int
    unseen_users: int
    unseen_items: int
    unseen_rows: int
    dropped_test_rows: int
    fold: int | None = None

    def __str__(self) -> str:
        fold = f" fold {self.fold}" if self.fold is not None else ""
        return (f"{self.method}{fold}: {self.n_train} train / {self.n_test} test rows; "
                f"{self.unseen_users} unseen users, {self.unseen_items} unseen items in test "
                f"({self.unseen_rows} rows, {self.dropped_test_rows} dropped)")


class SplitResult(tuple):
    """``(train, test)`` with the split's ``report`` attached."""

    report: SplitReport

    def __new__(cls, train: Interactions, test: Interactions, report: SplitReport) -> "SplitResult":
        self = super().__new__(cls, (train, test))
        self.report = report
        return self

    def __getnewargs__(self) -> tuple:  # so that pickling (e.g. to worker processes) works
        return (self[0], self[1], self.report)

    @property
    def train(self) -> Interactions:
        return self[0]

    @property
    def test(self) -> Interactions:
        return self[1]


def _round_half_up(x: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _check_frac(frac: Any, name: str = "frac") -> float:
    if isinstance(frac, bool) or not isinstance(frac, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in (0, 1), got {type(frac).__name__}")
    frac = float(frac)
    if not 0.0 < frac < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {frac}")
    return frac


def _check_inter(inter: Any) -> Interactions:
    if not isinstance(inter, Interactions):
        raise TypeError(f"inter must be an Interactions, got {type(inter).__name__}")
    return inter


def _finish(inter: Interactions, test_mask: np.ndarray, method: str, drop_unseen: bool,
            fold: int | None = None) -> SplitResult:
    train, test = inter.select(~test_mask), inter.select(test_mask)
    seen_users = np.bincount(train.users, minlength=inter.n_users) > 0
    seen_items = np.bincount(train.items, minlength=inter.n_items) > 0
    unseen = ~seen_users[test.users] | ~seen_items[test.items]
    unseen_users = int(np.unique(test.users[~seen_users[test.users]]).size)
    unseen_items = int(np.unique(test.items[~seen_items[test.items]]).size)
    n_unseen = int(unseen.sum())
    dropped = 0
    if drop_unseen and n_unseen:
        test = test.select(~unseen)
        dropped = n_unseen
    report = SplitReport(method, len(train), len(test), unseen_users, unseen_items, n_unseen, dropped, fold)
    return SplitResult(train, test, report)


def _within_user_rank(users: np.ndarray, order: np.ndarray, n_users: int) -> np.ndarray:
    """For rows sorted by ``order`` (grouped by user), each row's 0-based position in its group."""
    counts = np.bincount(users, minlength=n_users)
    starts = np.cumsum(counts) - counts
    rank = np.empty(users.size, dtype=np.int64)
    rank[order] = np.arange(users.size) - starts[users[order]]
    return rank


def random(inter: Interactions, frac: float = 0.2, *, by_user: bool = False, seed: Any = None,
           drop_unseen: bool = True) -> SplitResult:
    """Hold out a random ``frac`` of the rows (of every user's rows with ``by_user=True``)."""
    inter = _check_inter(inter)
    frac = _check_frac(frac)
    rng = np.random.default_rng(seed)
    n = len(inter)
    mask = np.zeros(n, dtype=bool)
    if not by_user:
        mask[rng.permutation(n)[: int(_round_half_up(frac * n))]] = True
        return _finish(inter, mask, f"random(frac={frac})", drop_unseen)
    key = rng.random(n)
    order = np.lexsort((key, inter.users))
    rank = _within_user_rank(inter.users, order, inter.n_users)
    quota = _round_half_up(frac * inter.user_counts())
    mask = rank < quota[inter.users]
    return _finish(inter, mask, f"random(frac={frac}, by_user=True)", drop_unseen)


def recommenders_stratified(inter: Interactions, ratio: float = 0.75, *, seed: int = 42,
                            drop_unseen: bool = False) -> SplitResult:
    """microsoft/recommenders' ``python_stratified_split(data, ratio, seed=seed)`` (per-user random).

    Row r gets the key ``numpy.random.RandomState(seed).rand(n)[r]`` (the legacy Mersenne-Twister
    stream that their ``np.random.seed(seed); np.random.rand(n)`` draws), in ``inter``'s row order
    (for MovieLens: the file's order, as their loader keeps it). Within each user, rows sorted by
    key ascending; the first ``round(ratio * n_u)`` go to train, the rest to test, with ``round``
    half-to-even (numpy's, as theirs: 0.75 * 26 = 19.5 -> 20 train rows). The split is therefore
    identical to theirs when ``inter`` holds the same rows in the same order.

    ``drop_unseen`` defaults to False here because their protocol keeps test rows whose item has
    no train row (such items stay rankable, and count in recall's and IDCG's |R|).
    """
    inter = _check_inter(inter)
    ratio = _check_frac(ratio, "ratio")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    key = np.random.RandomState(int(seed)).rand(len(inter))
    order = np.lexsort((key, inter.users))
    rank = _within_user_rank(inter.users, order, inter.n_users)
    n_train = np.round(ratio * inter.user_counts()).astype(np.int64)
    mask = rank >= n_train[inter.users]
    return _finish(inter, mask, f"recommenders_stratified(ratio={ratio}, seed={seed})", drop_unseen)


def leave_last_out(inter: Interactions, n: int = 1, *, min_train: int = 1,
                   drop_unseen: bool = True) -> SplitResult:
    """Each user's last ``n`` rows by (timestamp, row) go to test; ``min_train`` rows stay in train."""
    inter = _check_inter(inter)
    n = _check_count(n, "n", 1)
    min_train = _check_count(min_train, "min_train", 0)
    order = inter._user_time_order()
    rank = _within_user_rank(inter.users, order, inter.n_users)
    counts = inter.user_counts()
    quota = np.minimum(n, np.maximum(counts - min_train, 0))
    mask = rank >= (counts - quota)[inter.users]
    return _finish(inter, mask, f"leave_last_out(n={n})", drop_unseen)


def temporal(inter: Interactions, cutoff: Any = None, frac: float | None = None, *,
             drop_unseen: bool = True) -> SplitResult:
    """Global time split: rows at or after ``cutoff`` (or the latest ``frac`` of rows) go to test."""
    inter = _check_inter(inter)
    if (cutoff is None) == (frac is None):
        raise ValueError("give exactly one of cutoff= or frac=")
    if inter.timestamps is None:
        raise ValueError("temporal split needs timestamps, and these interactions have none")
    if cutoff is not None:
        if hasattr(cutoff, "timestamp"):
            cutoff = int(cutoff.timestamp())
        elif isinstance(cutoff, np.datetime64):
            cutoff = int(cutoff.astype("datetime64[s]").astype(np.int64))
        mask = inter.timestamps >= cutoff
        return _finish(inter, mask, f"temporal(cutoff={cutoff})", drop_unseen)
    frac = _check_frac(frac)
    order = np.argsort(inter.timestamps, kind="stable")
    mask = np.zeros(len(inter), dtype=bool)
    n_test = int(_round_half_up(frac * len(inter)))
    mask[order[len(inter) - n_test:]] = True
    return _finish(inter, mask, f"temporal(frac={frac})", drop_unseen)


def kfold(inter: Interactions, k: int = 5, *, by: str = "rating", holdout: float | int = 0.2,
          seed: Any = None, drop_unseen: bool = True) -> Iterator[SplitResult]:
    """k train/test splits: ``by="rating"`` partitions rows (Surprise), ``by="user"`` users (LensKit)."""
    inter = _check_inter(inter)
    k = _check_count(k, "k", 2)
    if by == "user":
        return user_kfold(inter, k, holdout=holdout, seed=seed, drop_unseen=drop_unseen)
    if by != "rating":
        raise ValueError(f"by must be 'rating' or 'user', got {by!r}")
    if k > len(inter):
        raise ValueError(f"k={k} folds need at least k rows, got {len(inter)}")
    folds = np.array_split(np.random.default_rng(seed).permutation(len(inter)), k)

    def generate() -> Iterator[SplitResult]:
        for i, fold in enumerate(folds):
            mask = np.zeros(len(inter), dtype=bool)
            mask[fold] = True
            yield _finish(inter, mask, f"kfold(k={k})", drop_unseen, fold=i)
    return generate()


def user_kfold(inter: Interactions, k: int = 5, *, holdout: float | int = 0.2, seed: Any = None,
               drop_unseen: bool = True) -> Iterator[SplitResult]:
    """LensKit-style user cross-folds: users in k groups; ``holdout`` rows of each test user to test.

    ``holdout`` is a count (int >= 1) or a fraction in (0, 1) of each user's rows (at least 1);
    either way a user keeps at least one row in train, so a one-row user has nothing in test.
    """
    inter = _check_inter(inter)
    k = _check_count(k, "k", 2)
    counts = inter.user_counts()
    if isinstance(holdout, (bool, np.bool_)):
        raise TypeError("holdout must be an int count or a float fraction")
    if isinstance(holdout, (int, np.integer)):
        quota = np.minimum(_check_count(holdout, "holdout", 1), counts - 1)
    else:
        quota = np.clip(_round_half_up(_check_frac(holdout, "holdout") * counts), 1, None)
        quota = np.minimum(quota, counts - 1)
    quota = np.maximum(quota, 0)
    active = np.flatnonzero(counts > 0)
    if k > active.size:
        raise ValueError(f"k={k} folds need at least k users with rows, got {active.size}")
    rng = np.random.default_rng(seed)
    groups = np.array_split(rng.permutation(active), k)
    order = np.lexsort((rng.random(len(inter)), inter.users))
    rank = _within_user_rank(inter.users, order, inter.n_users)
    selected = rank < quota[inter.users]

    def generate() -> Iterator[SplitResult]:
        for i, group in enumerate(groups):
            in_group = np.zeros(inter.n_users, dtype=bool)
            in_group[group] = True
            yield _finish(inter, selected & in_group[inter.users], f"user_kfold(k={k})", drop_unseen, fold=i)
    return generate()


def predefined(train: Interactions, test: Interactions, *, drop_unseen: bool = True) -> SplitResult:
    """A given train/test pair re-coded onto one vocabulary (the union of both sides' ids)."""
    train, test = _check_inter(train), _check_inter(test)
    users = _union(train.user_ids, test.user_ids, "user")
    items = _union(train.item_ids, test.item_ids, "item")
    metadata = train.item_metadata if train.item_metadata is not None else test.item_metadata
    if metadata is not None and items is not train.item_ids:
        from recforge.data.interactions import align_metadata
        metadata = align_metadata(metadata, items)
    parts = []
    for side in (train, test):
        u = side.users if side.user_ids is users else users.codes(side.user_ids.to_numpy())[side.users]
        it = side.items if side.item_ids is items else items.codes(side.item_ids.to_numpy())[side.items]
        parts.append((u, it, side.values, side.timestamps))
    if (parts[0][2] is None) != (parts[1][2] is None) or (parts[0][3] is None) != (parts[1][3] is None):
        raise ValueError("train and test must both have values (and timestamps) or both lack them")
    joined = Interactions._trusted(
        np.concatenate([parts[0][0], parts[1][0]]), np.concatenate([parts[0][1], parts[1][1]]),
        None if parts[0][2] is None else np.concatenate([parts[0][2], parts[1][2]]),
        None if parts[0][3] is None else np.concatenate([parts[0][3], parts[1][3]]),
        users, items, metadata)
    mask = np.zeros(len(joined), dtype=bool)
    mask[len(train):] = True
    return _finish(joined, mask, "predefined", drop_unseen)


def _union(a: IdMap, b: IdMap, what: str) -> IdMap:
    if a is b or a == b:
        return a
    x, y = a.to_numpy(), b.to_numpy()
    if (x.dtype.kind == "O") != (y.dtype.kind == "O") and x.size and y.size:
        raise TypeError(f"train and test {what} ids have different types ({x.dtype} and {y.dtype})")
    if np.isin(y, x).all() if y.dtype.kind != "O" else set(y.tolist()) <= set(x.tolist()):
        return a
    return IdMap(np.union1d(x, y))


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
