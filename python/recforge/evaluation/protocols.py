"""``evaluate``: run a fitted model over held-out data under a stated protocol.

Protocols
---------
``"full"`` (default, what recent literature recommends): every evaluated user's items are
ranked against the whole catalogue, minus the user's train items when ``exclude_train``.
Users are processed in chunks of ``batch_size`` through
``model.recommend(users, n=max_k, exclude_seen=exclude_train)``, so only
``batch_size x max_k`` recommendations are held at a time (the model scores one chunk at a
time too), never a users x items matrix.

``"sampled"`` (for comparison with papers that rank against sampled negatives; its numbers
are *not* comparable with full ranking and the output says so): for each evaluated user,
``n_negatives`` items are drawn uniformly without replacement (seeded) from the items the user
has in neither train nor test (all of them when fewer remain). The user's held-out items and
these negatives form the candidate list, ranked by the model's scores (ties: smaller item code
first, the project-wide order); ranking metrics are computed on that list and AUC compares
each positive with the user's negatives.

Model contract
--------------
- ranking metrics under ``"full"``: ``model.recommend(users, n, exclude_seen=bool)`` ->
  ``(items, scores)`` with ``items`` an int array len(users) x (<= n) of item codes, best
  first, -1 padded. User and item codes are those of ``train``.
- scores (``"sampled"``, ``auc``) and ratings (``rmse``, ``mae``): ``model.predict(users, items)``
  with two 1-D int64 arrays of equal length (one (user, item) pair per position) -> a 1-D
  array of finite real scores, higher = more relevant (for rmse/mae: the predicted rating).

Vocabulary
----------
``train`` and ``test`` share user and item codes (scipy sparse users x items matrices, or
objects with ``to_csr()`` such as ``recforge.data.Interactions``). Test entries whose user or
item code lies outside train's shape cannot be scored: they are dropped, counted and reported
(a warning, and ``DataFrame.attrs["report"]``). Test users with no train interaction and test
items no train user touched are kept and counted in the report.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import scipy.sparse as sp

from recforge.evaluation import metrics as M
from recforge.evaluation.names import MetricSpec, parse_metrics
from recforge._progress import progress_bar
from recforge.data.pairs import is_stored as stored
from recforge.kernels import _validation as v

PROTOCOLS = ("full", "sampled")


def import_pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - exercised only without pandas
        raise ImportError("recforge.evaluate returns a pandas DataFrame: pip install recforge[data]") from None
    return pd


# ----------------------------------------------------------------------------- inputs

def interaction_matrix(data: Any, name: str) -> sp.csr_matrix:
    """A canonical float64 users x items CSR of ``data`` (scipy sparse, or anything with ``to_csr()``).

    Stored entries are interactions whatever their value: explicit zeros are kept (a rating of 0
    is still a rating), unlike the metric functions' ``relevant``."""
    if not sp.issparse(data) and hasattr(data, "to_csr"):
        data = data.to_csr()
    if not (sp.issparse(data) and data.ndim == 2):
        raise TypeError(f"{name} must be a 2-D scipy.sparse users x items matrix or have to_csr() "
                        f"(e.g. recforge.data.Interactions), got {type(data).__name__}")
    X = sp.csr_matrix(data, dtype=np.float64)
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def pattern(X: sp.csr_matrix) -> sp.csr_matrix:
    """X with every stored entry set to 1."""
    return sp.csr_matrix((np.ones(X.nnz), X.indices, X.indptr), shape=X.shape)


def _recode(train: Any, test: Any, coo: sp.coo_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Test (row, col) codes in train's vocabulary when both carry different id maps, -1 where unknown."""
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    for attr, which in (("user_ids", "rows"), ("item_ids", "cols")):
        mine, theirs = getattr(train, attr, None), getattr(test, attr, None)
        if mine is None or theirs is None or mine is theirs or not hasattr(mine, "codes"):
            continue
        if mine == theirs:
            continue
        lookup = np.asarray(mine.codes(np.asarray(theirs), missing=-1), dtype=np.int64)
        if which == "rows":
            rows = lookup[rows]
        else:
            cols = lookup[cols]
    return rows, cols


def align_test(train_data: Any, test_data: Any, train: sp.csr_matrix, test: sp.csr_matrix
               ) -> tuple[sp.csr_matrix, dict[str, int]]:
    """test restricted to train's users x items, with counts of what fell outside and what is cold.

    When train and test carry different id maps (``user_ids``/``item_ids``), test is first
    re-coded through the original ids."""
    n_users, n_items = train.shape
    coo = test.tocoo()
    rows, cols = _recode(train_data, test_data, coo)
    user_in, item_in = (rows >= 0) & (rows < n_users), (cols >= 0) & (cols < n_items)
    inside = user_in & item_in
    report = {
        "test_interactions": int(test.nnz),
        "dropped_out_of_vocabulary": int(np.count_nonzero(~inside)),
        "dropped_users_out_of_vocabulary": int(np.unique(coo.row[~user_in]).size),
        "dropped_items_out_of_vocabulary": int(np.unique(coo.col[~item_in]).size),
    }
    aligned = sp.csr_matrix((coo.data[inside], (rows[inside], cols[inside])), shape=train.shape)
    aligned.sum_duplicates()
    test_users = np.flatnonzero(np.diff(aligned.indptr))
    test_items = np.unique(aligned.indices)
    report["cold_test_users"] = int(np.count_nonzero(np.diff(train.indptr)[test_users] == 0))
    report["cold_test_items"] = int(np.count_nonzero(np.bincount(train.indices, minlength=n_items)[test_items] == 0))
    return aligned, report


def relevance_matrix(test: sp.csr_matrix, graded: bool, threshold: float | None) -> sp.csr_matrix:
    """Held-out items that count as relevant: every stored entry, or those with value >= threshold;
    gain 1, or the value itself when ``graded`` (which must then be >= 0)."""
    R = test.copy()
    if threshold is not None:
        keep = R.data >= threshold
        R.data = np.where(keep, R.data if graded else 1.0, 0.0)
    elif not graded:
        R.data = np.ones_like(R.data)
    if graded and R.nnz and R.data.min() < 0:
        raise ValueError("graded=True uses test values as NDCG gains, which must be >= 0")
    R.eliminate_zeros()
    return R


def model_recommend(model: Any, users: np.ndarray, n: int, exclude_seen: bool, n_items: int) -> np.ndarray:
    """model.recommend for one chunk, checked against the contract."""
    require(model, "recommend", "ranking metrics under protocol='full'")
    out = model.recommend(users, n=n, exclude_seen=exclude_seen)
    items = out[0] if isinstance(out, tuple) else out
    items = np.asarray(items)
    if items.ndim != 2 or items.shape[0] != users.size:
        raise ValueError(f"model.recommend returned items of shape {items.shape}; expected "
                         f"({users.size}, <= {n}) for {users.size} users")
    return M.check_recommended(items[:, :n], n_items, name="model.recommend items")


def require(model: Any, method: str, purpose: str) -> None:
    if not callable(getattr(model, method, None)):
        raise TypeError(f"{purpose} need(s) model.{method}(...), which {type(model).__name__} does not have")


def model_scores(model: Any, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """model.predict on (user, item) pairs, checked against the contract."""
    require(model, "predict", "the sampled protocol and auc")
    scores = np.asarray(model.predict(users, items), dtype=np.float64)
    if scores.shape != users.shape:
        raise ValueError(f"model.predict returned shape {scores.shape} for {users.size} (user, item) pairs")
    if not np.all(np.isfinite(scores)):
        raise ValueError("model.predict returned NaN or infinite scores")
    return scores


def chunks(users: np.ndarray, size: int, bar=None) -> Iterable[np.ndarray]:
    for start in range(0, users.size, size):
        yield users[start:start + size]
        if bar is not None:
            bar.update(min(size, users.size - start))


# ----------------------------------------------------------------------------- sampling

def complement_codes(excluded: sp.csr_matrix, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """For each (row, p): the p-th (0-based) item code not stored in that row of ``excluded``."""
    counts = np.diff(excluded.indptr)
    offset = np.int64(excluded.shape[1] + 1)
    # the j-th excluded item s_j has s_j - j non-excluded items before it; the p-th free code is
    # p + #{j : s_j - j <= p}
    shifted = excluded.indices - (np.arange(excluded.nnz) - np.repeat(excluded.indptr[:-1], counts))
    keys = np.repeat(np.arange(excluded.shape[0], dtype=np.int64), counts) * offset + shifted
    before = np.searchsorted(keys, rows * offset + positions, side="right") - excluded.indptr[rows]
    return positions + before


def sample_negatives(excluded: sp.csr_matrix, n_negatives: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Per row, min(n_negatives, free) distinct item codes drawn uniformly from the codes that row
    does not store (returned as a pattern CSR of ones)."""
    m, n_items = excluded.shape
    free = n_items - np.diff(excluded.indptr)
    take = np.minimum(free, n_negatives)
    positions = np.full((m, n_negatives), -1, dtype=np.int64)
    small = np.flatnonzero(free <= 2 * n_negatives)
    if small.size:  # few free items: a random permutation of all of them
        width = int(free[small].max()) if small.size else 0
        keys = rng.random((small.size, width))
        keys[np.arange(width)[None, :] >= free[small][:, None]] = np.inf
        perm = np.argsort(keys, axis=1)[:, :n_negatives]
        perm = np.where(np.arange(perm.shape[1])[None, :] < take[small][:, None], perm, -1)
        positions[small, :perm.shape[1]] = perm
    large = np.flatnonzero(free > 2 * n_negatives)
    if large.size:  # many free items: draw, then redraw the repeats (few, and fewer each round)
        draw = rng.integers(0, free[large][:, None], size=(large.size, n_negatives))
        while True:
            order = np.argsort(draw, axis=1, kind="stable")
            ordered = np.take_along_axis(draw, order, axis=1)
            repeat = np.zeros(draw.shape, dtype=bool)
            np.put_along_axis(repeat, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
            if not repeat.any():
                break
            r, c = np.nonzero(repeat)
            draw[r, c] = rng.integers(0, free[large][r])
        positions[large] = draw
    rows = np.repeat(np.arange(m, dtype=np.int64), n_negatives).reshape(m, n_negatives)
    keep = positions >= 0
    codes = complement_codes(excluded, rows[keep], positions[keep])
    out = sp.csr_matrix((np.ones(codes.size), (rows[keep], codes)), shape=(m, n_items))
    out.sum_duplicates()
    return out


class CandidateBlock:
    """Each row's candidates as a dense rows x width block, sorted by score descending with ties
    by smaller item code (the project-wide order); padding sorts last."""

    def __init__(self, candidates: sp.csr_matrix, scores: np.ndarray):
        m = candidates.shape[0]
        self.counts = np.diff(candidates.indptr)
        width = int(self.counts.max()) if m else 0
        rows = np.repeat(np.arange(m), self.counts)
        place = np.arange(candidates.nnz) - candidates.indptr[rows]
        neg_scores = np.full((m, width), np.inf)
        neg_scores[rows, place] = -scores
        items = np.full((m, width), -1, dtype=np.int64)
        items[rows, place] = candidates.indices  # ascending within a row, so a stable sort breaks ties by code
        self.order = np.argsort(neg_scores, axis=1, kind="stable")
        self.sorted_neg_scores = np.take_along_axis(neg_scores, self.order, axis=1)
        self.items = np.take_along_axis(items, self.order, axis=1)

    def top(self, n: int) -> np.ndarray:
        """The first n items of every row (-1 padded)."""
        out = np.full((self.items.shape[0], n), -1, dtype=np.int64)
        width = min(n, self.items.shape[1])
        out[:, :width] = self.items[:, :width]
        return out

    def auc(self, relevant: sp.csr_matrix) -> np.ndarray:
        r"""Per row, :math:`(\sum_{p} \mathrm{rank}(p) - P(P+1)/2) / (P N)` with ascending ranks, ties
        sharing their mean rank (a tied positive/negative pair counts 1/2); NaN without both classes."""
        m, width = self.items.shape
        if width == 0:
            return np.full(m, np.nan)
        s = self.sorted_neg_scores
        j = np.broadcast_to(np.arange(width), s.shape)
        starts = np.ones(s.shape, dtype=bool)
        starts[:, 1:] = s[:, 1:] != s[:, :-1]
        ends = np.ones(s.shape, dtype=bool)
        ends[:, :-1] = starts[:, 1:]
        first = np.maximum.accumulate(np.where(starts, j, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, j, width)[:, ::-1], axis=1)[:, ::-1]
        descending_rank = (first + last) / 2.0 + 1.0                   # 1-based, best = 1
        ascending_rank = self.counts[:, None] + 1.0 - descending_rank  # padding sorts last: no effect
        rows = np.repeat(np.arange(m), width).reshape(m, width)
        positive = (self.items >= 0) & stored(relevant, rows.ravel(), np.maximum(self.items, 0).ravel()
                                               ).reshape(m, width)
        n_pos = positive.sum(axis=1)
        n_neg = self.counts - n_pos
        rank_sum = np.where(positive, ascending_rank, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg),
                            np.nan)


# ----------------------------------------------------------------------------- accumulation

class Accumulator:
    """Per-user values of every per-user metric, plus item exposure for the catalogue metrics."""

    def __init__(self, specs: list[MetricSpec], n_users: int, n_items: int):
        self.per_user = {s.label: np.full(n_users, np.nan) for s in specs
                         if s.kind in ("ranking", "list", "auc", "rating")}
        self.exposure = {s.label: np.zeros(n_items, dtype=np.int64) for s in specs if s.kind == "catalogue"}
        self.overall: dict[str, float] = {}
        self.specs = specs

    def add_lists(self, users: np.ndarray, rec: np.ndarray, relevant: sp.csr_matrix, context: dict) -> None:
        m = M.match(rec, relevant)
        for s in self.specs:
            top = rec[:, :s.k] if s.k else rec
            if s.kind == "ranking":
                values = M.RANKING[s.name](m, s.k)
                self.per_user[s.label][users] = np.where(m.n_relevant > 0, values, np.nan)
            elif s.kind == "catalogue":
                self.exposure[s.label] += M.exposure_counts(top, relevant.shape[1])
            elif s.name == "novelty":
                self.per_user[s.label][users] = M.novelty_per_user(top, context["popularity"], context["n_train_users"])
            elif s.name == "average_popularity":
                self.per_user[s.label][users] = M._per_list_mean(top, context["popularity"])
            elif s.name == "diversity":
                self.per_user[s.label][users] = M.diversity_per_user(top, context["item_vectors"],
                                                                     context["item_similarity"])


# ----------------------------------------------------------------------------- protocols

def _full_ranking(model, train, relevant, users, specs, acc, ctx, exclude_train, batch_size, bar):
    n_items = train.shape[1]
    list_specs = [s for s in specs if s.k is not None]
    max_k = max((s.k for s in list_specs), default=0)
    if max_k:
        for chunk in chunks(users, batch_size, bar):
            rec = model_recommend(model, chunk, max_k, exclude_train, n_items)
            acc.add_lists(chunk, rec, relevant[chunk], ctx)
    if any(s.kind == "auc" for s in specs):
        # AUC needs the score of every candidate item: chunks of at most ~4M (user, item) pairs
        step = max(1, min(batch_size, 4_000_000 // n_items))
        for chunk in chunks(users, step, None if max_k else bar):
            rows = np.repeat(np.arange(chunk.size, dtype=np.int64), n_items)
            cols = np.tile(np.arange(n_items, dtype=np.int64), chunk.size)
            if exclude_train:
                keep = ~stored(train[chunk], rows, cols)
                rows, cols = rows[keep], cols[keep]
            _auc_chunk(model, chunk, rows, cols, relevant[chunk], acc)


def _auc_chunk(model, chunk, rows, cols, relevant, acc):
    """Per-user AUC of the candidate pairs (rows = position in chunk, cols = item code)."""
    scores = model_scores(model, chunk[rows], cols)
    values = np.full(chunk.size, np.nan)
    if rows.size:
        labels = stored(relevant, rows, cols).astype(np.int8)
        values[np.unique(rows)] = M.auc(labels, scores, groups=rows, per_group=True)
    for s in acc.specs:
        if s.kind == "auc":
            acc.per_user[s.label][chunk] = values


def _sampled(model, train, test, relevant, users, specs, acc, ctx, n_negatives, seed, batch_size, bar):
    rng = np.random.default_rng(seed)
    max_k = max((s.k for s in specs if s.k is not None), default=0)
    wants_auc = any(s.kind == "auc" for s in specs)
    for chunk in chunks(users, batch_size, bar):
        positives = relevant[chunk]
        seen = pattern(train[chunk] + pattern(test[chunk]))  # every item in train or test, incl. zero values
        seen.sort_indices()
        negatives = sample_negatives(seen, n_negatives, rng)
        candidates = pattern(positives) + negatives
        candidates.sort_indices()
        rows = np.repeat(np.arange(chunk.size, dtype=np.int64), np.diff(candidates.indptr))
        block = CandidateBlock(candidates, model_scores(model, chunk[rows], candidates.indices.astype(np.int64)))
        if max_k:
            acc.add_lists(chunk, block.top(max_k), positives, ctx)
        if wants_auc:
            values = block.auc(positives)
            for s in specs:
                if s.kind == "auc":
                    acc.per_user[s.label][chunk] = values


def _rating(model, test, specs, acc, batch_size):
    coo = test.tocoo()
    if coo.nnz == 0 or not any(s.kind == "rating" for s in specs):
        return
    require(model, "predict", "rmse and mae")
    step = max(1, batch_size * 1000)
    pred = np.concatenate([
        np.asarray(model.predict(coo.row[i:i + step].astype(np.int64), coo.col[i:i + step].astype(np.int64)),
                   dtype=np.float64).reshape(-1)
        for i in range(0, coo.nnz, step)])
    if pred.shape != (coo.nnz,) or not np.all(np.isfinite(pred)):
        raise ValueError("model.predict must return one finite prediction per (user, item) pair")
    n_users = test.shape[0]
    count = np.bincount(coo.row, minlength=n_users)
    err = pred - coo.data
    with np.errstate(invalid="ignore", divide="ignore"):
        per = {"rmse": np.sqrt(np.bincount(coo.row, weights=err ** 2, minlength=n_users) / count),
               "mae": np.bincount(coo.row, weights=np.abs(err), minlength=n_users) / count}
    overall = {"rmse": M.rmse(coo.data, pred), "mae": M.mae(coo.data, pred)}
    for s in specs:
        if s.kind == "rating":
            acc.per_user[s.label][:] = np.where(count > 0, per[s.name], np.nan)
            acc.overall[s.label] = overall[s.name]


# ----------------------------------------------------------------------------- entry point

def evaluate(model: Any, train: Any, test: Any, metrics: str | Iterable[str] = ("ndcg@10", "recall@20"), *,
             protocol: str = "full", n_negatives: int = 100, exclude_train: bool = True, seed: int = 0,
             per_user: bool = False, batch_size: int = 1024, graded: bool = False,
             relevance_threshold: float | None = None, item_vectors: Any = None, item_similarity: Any = None,
             progress: bool = False):
    """Evaluate a fitted ``model`` on ``test`` given its ``train`` data; returns a pandas DataFrame.

    ``metrics``: names like ``"ndcg@10"``, ``"recall@20"``, ``"precision@5"``, ``"f1@10"``,
    ``"hit_rate@10"``, ``"map@10"``, ``"mrr@10"``, ``"coverage@10"``, ``"gini@10"``,
    ``"novelty@10"``, ``"average_popularity@10"``, ``"diversity@10"`` (needs ``item_vectors``
    or ``item_similarity``), ``"auc"``, ``"rmse"``, ``"mae"`` (see :mod:`recforge.evaluation.metrics`
    for formulas and conventions). ``protocol``: ``"full"`` or ``"sampled"`` (module docstring).

    ``exclude_train`` (full protocol): rank only items the user has not interacted with in train
    (passed to ``model.recommend`` as ``exclude_seen``); the sampled protocol never draws train
    or test items as negatives, whatever its value. ``batch_size``: users per ``recommend`` /
    scoring call (memory is proportional to it). ``seed``: negative sampling (for a given
    ``batch_size``). ``progress``: a tqdm bar over users (when tqdm is installed).

    Relevance: every held-out (test) item counts as relevant with gain 1, or its value as the
    NDCG gain when ``graded=True``; with ``relevance_threshold`` only values >= it count.
    Ranking and list metrics are averaged over users with at least one relevant held-out item
    (their lists also feed coverage and gini); AUC over those with a positive and a negative
    candidate; rmse/mae are computed over all held-out ratings (not averaged per user).

    Returns, with ``per_user=False``: one row per metric (index ``metric``) with columns
    ``value``, ``n_users`` (how many users the value covers) and ``protocol`` ("full", or
    "sampled (N negatives per user)"). With ``per_user=True``: one row per evaluated user
    (index ``user``, the train user code) and one column per per-user metric; the summary
    table is in ``.attrs["summary"]``. Either way ``.attrs["report"]`` counts test entries
    dropped as outside the train vocabulary, cold users/items, and evaluated users.
    """
    pd = import_pandas()
    specs = parse_metrics(metrics)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    batch_size = v.check_positive_int(batch_size, "batch_size")
    if protocol == "sampled":
        n_negatives = v.check_positive_int(n_negatives, "n_negatives")
        if any(s.kind == "catalogue" for s in specs):
            raise ValueError("coverage and gini describe full recommendation lists; use protocol='full'")
    if relevance_threshold is not None and not np.isfinite(relevance_threshold):
        raise ValueError(f"relevance_threshold must be a finite number, got {relevance_threshold}")
    if any(s.name == "diversity" for s in specs) and (item_vectors is None) == (item_similarity is None):
        raise ValueError("the diversity metric needs exactly one of item_vectors= or item_similarity=")

    train_csr = pattern(interaction_matrix(train, "train"))
    test_csr = interaction_matrix(test, "test")
    if test_csr.nnz == 0:
        raise ValueError("test is empty: there is nothing to evaluate")
    test_csr, report = align_test(train, test, train_csr, test_csr)
    if report["dropped_out_of_vocabulary"]:
        warnings.warn(f"{report['dropped_out_of_vocabulary']} of {report['test_interactions']} test interactions "
                      f"lie outside the train vocabulary ({report['dropped_users_out_of_vocabulary']} users, "
                      f"{report['dropped_items_out_of_vocabulary']} items) and were not evaluated", stacklevel=2)
    if test_csr.nnz == 0:
        raise ValueError("every test interaction lies outside the train vocabulary: nothing to evaluate")
    relevant = relevance_matrix(test_csr, graded, relevance_threshold)
    users = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int64)
    needs_users = any(s.kind != "rating" for s in specs)
    if needs_users and users.size == 0:
        raise ValueError("no test interaction counts as relevant (relevance_threshold="
                         f"{relevance_threshold}, graded={graded}: graded gains of 0 are not relevant)")
    report["evaluated_users"] = int(users.size)

    n_users, n_items = train_csr.shape
    popularity, _ = M.item_popularity(train_csr)
    ctx = {"popularity": popularity, "n_train_users": n_users, "item_vectors": item_vectors,
           "item_similarity": item_similarity}
    acc = Accumulator(specs, n_users, n_items)
    if needs_users:
        bar = progress_bar(int(users.size), f"evaluate ({protocol})", progress)
        try:
            if protocol == "full":
                _full_ranking(model, train_csr, relevant, users, specs, acc, ctx, exclude_train, batch_size, bar)
            else:
                _sampled(model, train_csr, test_csr, relevant, users, specs, acc, ctx, n_negatives, seed,
                         batch_size, bar)
        finally:
            bar.close()
    _rating(model, test_csr, specs, acc, batch_size)

    label = "full" if protocol == "full" else f"sampled ({n_negatives} negatives per user)"
    rows = []
    for s in specs:
        if s.kind == "catalogue":
            counts = acc.exposure[s.label]
            value = M.coverage_from_counts(counts) if s.name == "coverage" else M.gini_from_counts(counts)
            covered = users.size
        else:
            per = acc.per_user[s.label]
            covered = int(np.count_nonzero(np.isfinite(per)))
            if s.kind == "rating":
                value = acc.overall[s.label]
            else:
                value = float(np.nanmean(per)) if covered else float("nan")
        rows.append({"metric": s.label, "value": value, "n_users": covered, "protocol": label})
    summary = pd.DataFrame(rows).set_index("metric")
    summary.attrs["report"] = report
    if not per_user:
        return summary
    evaluated = np.union1d(users, np.flatnonzero(np.diff(test_csr.indptr))) if any(
        s.kind == "rating" for s in specs) else users
    table = pd.DataFrame({label_: values[evaluated] for label_, values in acc.per_user.items()},
                         index=pd.Index(evaluated, name="user"))
    table.attrs["summary"] = summary
    table.attrs["report"] = report
    return table
