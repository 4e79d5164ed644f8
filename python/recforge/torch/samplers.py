r"""Negative samplers for implicit-feedback training (numpy and the compiled core; no torch needed).

:class:`UniformNegativeSampler` draws, for user u with sorted positive items
:math:`p_0 < p_1 < \dots < p_{m-1}` among n items, items uniformly from the n - m non-positives.
It needs no rejection loop over items: draw :math:`r \sim U\{0, \dots, n - m - 1\}` and return
the r-th non-positive item,

.. math::  j = r + \#\{k : p_k - k \le r\},

because :math:`p_k - k` (the number of non-positives below :math:`p_k`) is non-decreasing in k.
Every non-positive item is the image of exactly one r, so the draw is exactly uniform; the count
is a binary search over the user's row. It runs in the compiled core (OpenMP) with a
counter-based generator: sample i of a call depends only on the call's seed and i, so the result
does not depend on the number of threads.

:class:`PopularityNegativeSampler` draws items with :math:`q(j) \propto (c_j + s)^\alpha` (c_j: the
item's interaction count) and returns :math:`\log q(j)` for the logQ correction of
:func:`recforge.torch.losses.sampled_softmax`.

Randomness comes from a ``numpy.random.Generator`` given per call (the training loop hands one
to each epoch), or from the sampler's own generator seeded at construction: the same seed and
the same calls give the same draws.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge import _core
from recforge.backend import resolve_num_threads
from recforge.kernels import _validation as v

PARALLEL_MIN_SAMPLES = 65536  # smaller calls run on one thread (starting threads costs more than they save)


def _generator(rng: Any, fallback: np.random.Generator) -> np.random.Generator:
    if rng is None:
        return fallback
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")


def _count(value: Any, name: str) -> int:
    return v.check_int(value, name, 1)


class UniformNegativeSampler:
    """Items drawn uniformly from each user's non-positive items (exact; never a positive).

    ``user_items``: users x items sparse matrix whose non-zero entries are the positives (values
    otherwise ignored). ``seed``: seeds the sampler's own generator, used
    when :meth:`sample` gets no ``rng``. ``num_threads``: threads of the compiled sampler (0: all
    cores); the draws do not depend on it. A user whose every item is positive has nothing to
    draw: :meth:`sample` raises ValueError naming such users when they are asked for.
    """

    def __init__(self, user_items: Any, seed: int = 0, *, num_threads: int = 0):
        csr = v.as_csr(user_items, "user_items")  # canonical: sorted, no duplicates, no explicit zeros
        self.n_users, self.n_items = (int(s) for s in csr.shape)
        self._indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
        self._indices = np.ascontiguousarray(csr.indices, dtype=np.int64)
        self.n_negatives = self.n_items - np.diff(self._indptr)  # non-positive items per user
        self.num_threads = resolve_num_threads(num_threads)
        self._rng = np.random.default_rng(seed)

    def sample(self, users: Any, n_neg: int = 1, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """int64 (len(users), n_neg): for each user, n_neg independent uniform non-positive items."""
        users = self._check_users(users)
        n_neg = _count(n_neg, "n_neg")
        gen = _generator(rng, self._rng)
        free = self.n_negatives[users]
        if users.size and free.min() == 0:
            full = np.unique(users[free == 0])
            raise ValueError(f"users {full[:10].tolist()} have every item positive: no negative to sample")
        seed = int(gen.integers(0, 2**64, dtype=np.uint64))
        threads = self.num_threads if users.size * n_neg >= PARALLEL_MIN_SAMPLES else 1
        return _core.uniform_negatives(indptr=self._indptr, indices=self._indices, n_items=self.n_items,
                                       users=users, n_neg=n_neg, seed=seed, num_threads=threads)

    def _check_users(self, users: Any) -> np.ndarray:
        users = np.asarray(users)
        if users.ndim != 1 or not (users.size == 0 or np.issubdtype(users.dtype, np.integer)):
            raise TypeError(f"users must be a 1-D integer array, got dtype {users.dtype} and shape {users.shape}")
        users = np.ascontiguousarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"users must lie in [0, {self.n_users}), got values in [{users.min()}, {users.max()}]")
        return users


class PopularityNegativeSampler:
    r"""Items drawn with :math:`q(j) = (c_j + s)^\alpha / \sum_k (c_k + s)^\alpha`; positives not excluded.

    ``item_counts``: interactions per item (length n_items), or a users x items sparse matrix
    whose stored entries per column are counted. ``alpha``: 1 samples by popularity, 0 uniformly.
    ``smoothing`` s keeps items never seen drawable (s > 0) or never drawn (s = 0).
    :meth:`sample` returns the items and :math:`\log q` of each, for the logQ correction.
    """

    def __init__(self, item_counts: Any, alpha: float = 1.0, smoothing: float = 0.0, seed: int = 0):
        if sp.issparse(item_counts):
            csc = v.as_csr(item_counts, "item_counts").tocsc()
            counts = np.diff(csc.indptr).astype(np.float64)
        else:
            counts = np.asarray(item_counts, dtype=np.float64)
            if counts.ndim != 1:
                raise ValueError(f"item_counts must be 1-D or a sparse matrix, got shape {counts.shape}")
        if not np.all(np.isfinite(counts)) or (counts.size and counts.min() < 0):
            raise ValueError("item_counts must be finite and >= 0")
        if not np.isfinite(alpha) or not np.isfinite(smoothing) or smoothing < 0:
            raise ValueError(f"alpha must be finite and smoothing finite and >= 0, got {alpha}, {smoothing}")
        base = counts + smoothing
        weights = np.where(base > 0, np.power(np.where(base > 0, base, 1.0), alpha), 0.0)
        total = weights.sum()
        if not total > 0:
            raise ValueError("item_counts (+ smoothing) give no item a positive probability")
        self.n_items = int(counts.size)
        self.probabilities = weights / total
        with np.errstate(divide="ignore"):
            self.log_probabilities = np.log(self.probabilities)
        self._cdf = np.cumsum(self.probabilities)
        self._rng = np.random.default_rng(seed)

    def sample(self, n: Any, *, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(items int64 of shape ``n``, log q float64 of the same shape). ``n``: int or shape tuple."""
        shape = (_count(n, "n"),) if not isinstance(n, tuple) else tuple(_count(s, "n") for s in n)
        gen = _generator(rng, self._rng)
        u = gen.random(shape) * self._cdf[-1]
        items = np.minimum(np.searchsorted(self._cdf, u, side="right"), self.n_items - 1).astype(np.int64)
        return items, self.log_probabilities[items]
