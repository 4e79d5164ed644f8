"""Sequence batching shared by SASRec and BERT4Rec (numpy only).

Tokens: item code c is token c + 1; token 0 is padding (and BERT4Rec's mask token is
n_items + 1). Batches are left padded, so the most recent item is always in the last column,
and only as wide as the longest sequence in the batch (at most ``max_len``).

Training batches are *length bucketed*: users are shuffled, cut into pools of
``POOL_BATCHES`` batches, sorted by length inside a pool, cut into batches, and the batches are
shuffled. Short sequences then travel with short ones, so a batch costs its own length rather
than ``max_len`` (Amazon sequences average ~9 items against max_len 50), while every user still
appears exactly once per epoch in a random batch.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

PAD = 0
#: batches per pool sorted by length (larger: tighter batches, less random batch composition)
POOL_BATCHES = 32


def as_sequences(sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The sequences as int64 arrays (no copy when already int64)."""
    return [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]


def pad_left(sequences: Sequence[np.ndarray], max_len: int, offset: int = 1, extra: int | None = None) -> np.ndarray:
    """(len(sequences), L) int64 tokens: each sequence's last ``max_len`` codes + ``offset``,
    right aligned, 0 before; with ``extra`` a token appended after each sequence (it counts in
    the ``max_len`` window). L = the longest (clipped) sequence, at least 1."""
    keep = max_len - (extra is not None)
    clipped = [s[-keep:] if keep > 0 else s[:0] for s in sequences]
    lengths = np.fromiter((c.size for c in clipped), dtype=np.int64, count=len(clipped))
    width = max(1, int(lengths.max(initial=0)) + (extra is not None))
    out = np.zeros((len(clipped), width), dtype=np.int64)
    if lengths.sum():
        rows = np.repeat(np.arange(len(clipped)), lengths)
        ends = width - (extra is not None)
        cols = ends - lengths[rows] + (np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        out[rows, cols] = np.concatenate(clipped) + offset
    if extra is not None:
        out[:, -1] = extra
    return out


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches covering every position of ``lengths`` once (module docstring)."""
    order = rng.permutation(lengths.size)
    pool = batch_size * POOL_BATCHES
    batches = []
    for start in range(0, order.size, pool):
        members = order[start:start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches.extend(members[i:i + batch_size] for i in range(0, members.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def length_sorted_chunks(lengths: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    """Positions in chunks of similar length (for inference: the chunks are narrow)."""
    order = np.argsort(lengths, kind="stable")
    for start in range(0, order.size, chunk):
        yield order[start:start + chunk]


def next_item_batch(sequences: Sequence[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """SASRec inputs and targets: tokens of s[:-1] and of s[1:] (both clipped to max_len)."""
    inputs = pad_left([s[:-1] for s in sequences], max_len)
    targets = pad_left([s[1:] for s in sequences], max_len)
    return inputs, targets


def masked_item_batch(sequences: Sequence[np.ndarray], max_len: int, mask_prob: float, mask_token: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BERT4Rec cloze inputs and targets.

    Each real position is replaced by ``mask_token`` with probability ``mask_prob`` (and one
    random position of a sequence with none masked is masked, so each sequence has a target);
    targets hold the original token at masked positions, 0 elsewhere.
    """
    tokens = pad_left(sequences, max_len)
    real = tokens != PAD
    masked = real & (rng.random(tokens.shape) < mask_prob)
    lacking = np.flatnonzero(real.any(axis=1) & ~masked.any(axis=1))
    if lacking.size:
        counts = real[lacking].sum(axis=1)
        first = tokens.shape[1] - counts
        masked[lacking, first + (rng.random(lacking.size) * counts).astype(np.int64)] = True
    targets = np.where(masked, tokens, PAD)
    inputs = np.where(masked, mask_token, tokens)
    return inputs, targets


def uniform_negatives(sequences: Sequence[np.ndarray], targets: np.ndarray, n_items: int,
                      rng: np.random.Generator, max_tries: int = 20) -> np.ndarray:
    """One negative token per target position, uniform over items outside the user's sequence
    (rejection sampling; after ``max_tries`` rounds a remaining clash is kept). 0 where the
    target is padding."""
    negatives = rng.integers(1, n_items + 1, size=targets.shape)
    rows = np.repeat(np.arange(len(sequences)), [s.size for s in sequences])
    seen = np.zeros(0, dtype=np.int64) if rows.size == 0 else rows * (n_items + 2) + np.concatenate(sequences) + 1
    seen = np.unique(seen)
    row_of = np.broadcast_to(np.arange(targets.shape[0])[:, None], targets.shape)
    for _ in range(max_tries):
        keys = row_of * (n_items + 2) + negatives
        clash = np.isin(keys, seen) & (targets != PAD)
        if not clash.any():
            break
        negatives[clash] = rng.integers(1, n_items + 1, size=int(clash.sum()))
    return np.where(targets != PAD, negatives, PAD)
