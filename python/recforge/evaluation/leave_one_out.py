r"""Leave-one-out evaluation of next-item recommenders (the SASRec / S3-Rec protocol).

Split
-----
Each user's chronological sequence :math:`s_1..s_n` gives a test target :math:`s_n` (history
:math:`s_1..s_{n-1}`), a validation target :math:`s_{n-1}` (history :math:`s_1..s_{n-2}`) and
the training sequence :math:`s_1..s_{n-2}`. Users need n >= 3 for validation and n >= 2 for
test; shorter ones are simply not evaluated at that stage. Models are fitted on the training
sequences and asked to rank for the stage's history (``recommend(..., history=)``), so the
validation item is seen at test time without refitting, as in the published code.

Protocols (every result row names its protocol)
-----------------------------------------------
* ``"full"``: the target's rank r (0-based) among all items. Two conventions for the items of
  the user's history: ``seen="exclude"`` (recforge's: they are removed from the ranking, as
  ``recommend(exclude_seen=True)`` does) and ``seen="zero"`` (S3-Rec/ICLRec's released code: their
  scores are set to 0, so they still outrank items with negative scores). Where the target itself
  lies in the history (a repeat purchase), "exclude" can never hit it; "zero" scores it 0.
* ``"sampled"``: the target ranked against ``n_negatives`` negatives fixed per user, drawn once
  with a seed from the items outside the user's whole sequence (see :func:`fixed_negatives`).

Metrics, from the rank r of the single target: :math:`\mathrm{HR@}k = [r < k]`,
:math:`\mathrm{NDCG@}k = [r < k] / \log_2(r + 2)`, :math:`\mathrm{MRR} = 1/(r+1)`, averaged
over evaluated users. Ties count in the target's favour only when the tied item has a larger
code (the project-wide order: equal scores rank smaller codes first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.kernels import _validation as v

STAGES = ("valid", "test")
SEEN = ("exclude", "zero")
#: users per scoring call
CHUNK = 2048


@dataclass
class LeaveOneOut:
    """Per-user sequences (item codes, oldest first) split for leave-one-out (module docstring)."""

    sequences: list[np.ndarray]
    n_items: int

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    def train_sequences(self) -> list[np.ndarray]:
        return [s[:-2] if s.size >= 3 else s[:0] for s in self.sequences]

    def users(self, stage: str) -> np.ndarray:
        """Codes of the users evaluated at ``stage``."""
        need = 3 if _stage(stage) == "valid" else 2
        lengths = np.fromiter((s.size for s in self.sequences), dtype=np.int64, count=self.n_users)
        return np.flatnonzero(lengths >= need).astype(np.int64)

    def histories(self, stage: str, users: np.ndarray) -> list[np.ndarray]:
        cut = 2 if _stage(stage) == "valid" else 1
        return [self.sequences[u][:-cut] for u in users]

    def targets(self, stage: str, users: np.ndarray) -> np.ndarray:
        back = 2 if _stage(stage) == "valid" else 1
        return np.fromiter((self.sequences[u][-back] for u in users), dtype=np.int64, count=users.size)

    def train_interactions(self, user_ids: Any = None, item_ids: Any = None):
        """The training sequences as Interactions (positions as timestamps), every user and item
        of the full data kept in the vocabulary so codes agree with the full sequences."""
        from recforge.data import Interactions
        from recforge.data.idmap import IdMap

        train = self.train_sequences()
        lengths = np.fromiter((s.size for s in train), dtype=np.int64, count=len(train))
        users = np.repeat(np.arange(len(train), dtype=np.int64), lengths)
        items = np.concatenate(train) if lengths.sum() else np.zeros(0, dtype=np.int64)
        times = np.arange(items.size, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return Interactions(users, items, None, times,
                            user_ids=user_ids if user_ids is not None else IdMap.range(len(train)),
                            item_ids=item_ids if item_ids is not None else IdMap.range(self.n_items))


def leave_one_out(data: Any, n_items: int | None = None) -> LeaveOneOut:
    """Split ``data`` (Interactions, ordered by timestamp then row order; or a list of per-user
    arrays of item codes, oldest first, with ``n_items``)."""
    if hasattr(data, "to_sequences"):
        return LeaveOneOut([np.asarray(s, dtype=np.int64) for s in data.to_sequences()], int(data.n_items))
    if n_items is None:
        raise ValueError("n_items is required when data is a list of sequences")
    seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in data]
    n_items = v.check_positive_int(n_items, "n_items")
    for s in seqs:
        if s.size and (s.min() < 0 or s.max() >= n_items):
            raise ValueError(f"sequences hold item codes outside 0..{n_items - 1}")
    return LeaveOneOut(seqs, n_items)


def fixed_negatives(sequences: Sequence[np.ndarray], n_items: int, n_negatives: int = 99, seed: int = 12345,
                    item_order: np.ndarray | None = None) -> np.ndarray:
    """(n_users, n_negatives) item codes drawn once per user, in S3-Rec's ``generate_test.py`` manner.

    One legacy ``numpy.random.RandomState(seed)`` stream for all users in order. For each
    user, rounds of ``n_negatives`` distinct draws from ``item_order`` (default: items in order of
    first appearance in the sequences, users in code order, which is what that script draws
    from) keep the draws outside the user's sequence, until ``n_negatives`` are kept. As in
    that script, a later round may repeat an item kept in an earlier round (only possible for
    users whose first round hit their own items). Users whose sequence leaves fewer than
    ``n_negatives`` items get -1 in the missing places.
    """
    n_items = v.check_positive_int(n_items, "n_items")
    n_negatives = v.check_positive_int(n_negatives, "n_negatives")
    if item_order is None:
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if len(sequences) else np.zeros(0, np.int64)
        _, first = np.unique(flat, return_index=True)
        item_order = flat[np.sort(first)]
    item_order = np.asarray(item_order, dtype=np.int64)
    pool = item_order.size
    in_pool = np.zeros(max(n_items, int(item_order.max(initial=-1)) + 1), dtype=bool)
    in_pool[item_order] = True
    rs = np.random.RandomState(seed)
    out = np.full((len(sequences), n_negatives), -1, dtype=np.int64)
    draw = min(n_negatives, pool)
    for u, seq in enumerate(sequences):
        own = np.unique(np.asarray(seq, dtype=np.int64))
        if pool - int(in_pool[own].sum()) <= 0:
            continue
        kept: list[np.ndarray] = []
        total = 0
        while total < n_negatives:
            picked = item_order[rs.choice(pool, draw, replace=False)]
            picked = picked[~np.isin(picked, own, assume_unique=True)]
            kept.append(picked)
            total += picked.size
        out[u] = np.concatenate(kept)[:n_negatives]
    return out


# ----------------------------------------------------------------------------- scoring

def _target_rank(target_score: np.ndarray, target: np.ndarray, cand_scores: np.ndarray,
                 cand_items: np.ndarray) -> np.ndarray:
    """Per row, how many candidates outrank the target (higher score, or equal and smaller code)."""
    ahead = (cand_scores > target_score[:, None]) | ((cand_scores == target_score[:, None])
                                                      & (cand_items < target[:, None]))
    return ahead.sum(axis=1)


def _metrics(ranks: np.ndarray, ks: Iterable[int]) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = ranks < k
        out[f"hit_rate@{k}"] = float(hit.mean()) if ranks.size else float("nan")
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean()) if ranks.size else float("nan")
    out["mrr"] = float((1.0 / (ranks + 1.0)).mean()) if ranks.size else float("nan")
    return out


def _history_csr(histories: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    lengths = np.fromiter((h.size for h in histories), dtype=np.int64, count=len(histories))
    indptr = np.r_[0, np.cumsum(lengths)]
    indices = np.concatenate(histories) if lengths.sum() else np.zeros(0, dtype=np.int64)
    M = sp.csr_matrix((np.ones(indices.size, np.float32), indices, indptr), shape=(len(histories), n_items))
    M.sum_duplicates()
    M.data[:] = 1.0
    return M


def _scores(model: Any, users: np.ndarray, histories: list[np.ndarray], items: np.ndarray, n_items: int) -> np.ndarray:
    """model scores of items (m, c) for users with these histories.

    Models with ``score_histories(histories, items)`` (the sequence models) answer directly;
    others are asked for their full ranking through ``recommend(history=[...], exclude_seen=False)``
    (slow, but any recommender can take part)."""
    if hasattr(model, "score_histories"):
        return np.asarray(model.score_histories(histories, items), dtype=np.float32)
    ranked, scores = model.recommend(users, n=n_items, exclude_seen=False, history=histories)
    full = np.full((users.size, n_items), -np.inf, dtype=np.float32)
    rows = np.repeat(np.arange(users.size), ranked.shape[1]).reshape(ranked.shape)
    valid = ranked >= 0
    full[rows[valid], ranked[valid]] = scores[valid]
    return np.take_along_axis(full, np.maximum(items, 0), axis=1)


def full_ranks(model: Any, split: LeaveOneOut, stage: str, seen: str = "exclude", k: int = 10,
               chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(users, rank of each user's target among all items) under the ``seen`` convention.

    Ranks >= k are reported as k (only HR@k'/NDCG@k' for k' <= k are defined from them). The
    top-k lists come from ``model.recommend(users, n, history=...)``: with "exclude", n = k and
    ``exclude_seen=True``; with "zero", n = k + the longest history in the chunk and
    ``exclude_seen=False``, after which history items are re-scored 0 and the list re-ranked.
    """
    if seen not in SEEN:
        raise ValueError(f"seen must be one of {SEEN}, got {seen!r}")
    k = v.check_positive_int(k, "k")
    users = split.users(stage)
    ranks = np.full(users.size, k, dtype=np.int64)
    order = _by_history_length(split, stage, users)
    for start in range(0, users.size, chunk):
        at = order[start:start + chunk]
        part = users[at]
        hist = split.histories(stage, part)
        target = split.targets(stage, part)
        if seen == "exclude":
            items, _ = model.recommend(part, n=k, exclude_seen=True, history=hist)
        else:
            items = _zero_convention_top(model, part, hist, k, split.n_items)
        hit_rows, hit_cols = np.nonzero(items == target[:, None])
        ranks[at[hit_rows]] = hit_cols
    return users, ranks


def _by_history_length(split: LeaveOneOut, stage: str, users: np.ndarray) -> np.ndarray:
    """Positions of ``users`` ordered by history length: chunks of similar length keep the
    sequence models' padded batches narrow (results do not depend on the order)."""
    cut = 2 if stage == "valid" else 1
    lengths = np.fromiter((split.sequences[u].size - cut for u in users), dtype=np.int64, count=users.size)
    return np.argsort(lengths, kind="stable")


def _zero_convention_top(model, users, histories, k, n_items):
    """Top-k lists when the history's scores are replaced by 0 (module docstring)."""
    width = min(n_items, k + max((h.size for h in histories), default=0))
    items, scores = model.recommend(users, n=width, exclude_seen=False, history=histories)
    out = np.full((users.size, k), -1, dtype=np.int64)
    for r in range(users.size):
        own = np.unique(histories[r])
        cand = items[r][items[r] >= 0]
        sc = scores[r][items[r] >= 0].astype(np.float64)
        sc[np.isin(cand, own)] = 0.0
        extra = np.setdiff1d(own, cand)
        cand = np.r_[cand, extra]
        sc = np.r_[sc, np.zeros(extra.size)]
        order = np.lexsort((cand, -sc))[:k]
        out[r, :order.size] = cand[order]
    return out


def sampled_ranks(model: Any, split: LeaveOneOut, stage: str, negatives: np.ndarray,
                  chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(users, rank of each user's target among the target and that user's fixed negatives)."""
    negatives = np.asarray(negatives, dtype=np.int64)
    if negatives.ndim != 2 or negatives.shape[0] != split.n_users:
        raise ValueError(f"negatives must have one row per user ({split.n_users}), got shape {negatives.shape}")
    users = split.users(stage)
    ranks = np.zeros(users.size, dtype=np.int64)
    order = _by_history_length(split, stage, users)
    for start in range(0, users.size, chunk):
        at = order[start:start + chunk]
        part = users[at]
        target = split.targets(stage, part)
        cands = np.concatenate([target[:, None], negatives[part]], axis=1)
        scores = _scores(model, part, split.histories(stage, part), cands, split.n_items)
        valid = cands[:, 1:] >= 0
        neg_scores = np.where(valid, scores[:, 1:], -np.inf)
        ranks[at] = _target_rank(scores[:, 0], target, neg_scores, cands[:, 1:])
    return users, ranks


def evaluate_leave_one_out(model: Any, split: LeaveOneOut, *, stage: str = "test", ks: Sequence[int] = (10,),
                           protocols: Sequence[str] = ("full", "sampled"), seen: Sequence[str] = ("exclude",),
                           negatives: np.ndarray | None = None, n_negatives: int = 99, seed: int = 12345) -> list[dict]:
    """Rows ``{"protocol", "stage", "metric", "value", "n_users"}`` for every protocol asked.

    ``protocols``: any of "full" (once per convention in ``seen``) and "sampled" (with
    ``negatives``, else :func:`fixed_negatives` of the split's sequences with ``n_negatives`` and
    ``seed``). Protocol labels: "leave-one-out full ranking (history excluded)", "... (history
    scored 0)", "leave-one-out sampled (99 fixed negatives per user, seed 12345)" (", given)" when
    ``negatives`` were passed).
    """
    stage = _stage(stage)
    ks = [v.check_positive_int(k, "ks") for k in ks]
    rows = []
    for protocol in protocols:
        if protocol == "full":
            for convention in seen:
                users, ranks = full_ranks(model, split, stage, convention, k=max(ks))
                label = ("leave-one-out full ranking (history excluded)" if convention == "exclude"
                         else "leave-one-out full ranking (history scored 0)")
                values = _metrics(ranks, ks)
                values.pop("mrr")  # ranks are clipped at max(ks): MRR is not defined from them
                rows += _rows(label, stage, values, users.size)
        elif protocol == "sampled":
            source = "given"
            if negatives is None:
                negatives = fixed_negatives(split.sequences, split.n_items, n_negatives, seed)
                source = f"seed {seed}"
            users, ranks = sampled_ranks(model, split, stage, negatives)
            label = f"leave-one-out sampled ({negatives.shape[1]} fixed negatives per user, {source})"
            rows += _rows(label, stage, _metrics(ranks, ks), users.size)
        else:
            raise ValueError(f"protocols must hold 'full' and/or 'sampled', got {protocol!r}")
    return rows


def _rows(label: str, stage: str, values: dict[str, float], n_users: int) -> list[dict]:
    return [{"protocol": label, "stage": stage, "metric": m, "value": val, "n_users": n_users}
            for m, val in values.items()]


def _stage(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    return stage
