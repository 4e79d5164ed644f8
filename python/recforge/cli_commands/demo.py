"""``recforge demo``: load, clean, split, fit every registered model, evaluate, compare.

Protocol (printed with the results): interactions are implicit feedback (every rating counts
as one interaction); the data is cleaned to a 5-core (users and items with >= 5 interactions,
repeatedly) unless the dataset comes pre-split; each user's interactions are split at random,
20% to test (seeded: ``--seed``), or with ``--split leave-last-out`` the latest one goes to test.
Every model ranks the whole catalogue minus the user's train items (full-ranking protocol).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recforge.cli_commands.console import Steps, note
from recforge.cli_commands.datasets import dataset_entry
from recforge.cli_commands.errors import UserError
from recforge.cli_commands.modelzoo import build_model, resolve_models

SPLITS = ("random", "leave-last-out")
TEST_FRACTION = 0.2
CORE = 5
METRICS = ("ndcg@10", "recall@20", "coverage@10")
EXAMPLE_USERS = 3
EXAMPLE_N = 5
FULL_RANKING_NOTE = "full ranking: each test user's candidates are all items not in their train set"


@dataclass
class Prepared:
    """Train/test interactions (train keeps its original values for display) and how they were made."""

    dataset: str
    train: Any
    test: Any
    protocol: list[str]


@dataclass
class ModelScore:
    model: str
    params: dict
    metrics: dict[str, float]
    fit_s: float
    recommend_s: float
    evaluate_s: float
    fitted: Any = field(default=None, repr=False)

    def row(self) -> dict:
        return {"model": self.model, **self.metrics, "fit_s": self.fit_s, "recommend_s": self.recommend_s,
                "evaluate_s": self.evaluate_s}


class RecommendTimer:
    """Passes every call through to ``model``; adds up the seconds spent in ``recommend``."""

    def __init__(self, model: Any):
        self._model = model
        self.seconds = 0.0

    def recommend(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._model.recommend(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def prepare(dataset: str, steps: Steps, *, split: str = "random", seed: int = 0, data_dir: Any = None,
            download: bool = True) -> Prepared:
    """Load ``dataset``, clean it and split it as the module docstring says."""
    from recforge.data import clean, split as splits

    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    key, entry = dataset_entry(dataset)
    with steps.step(f"load {key}"):
        loaded = entry.load(data_dir, download)
    with steps.step("clean + split"):
        if entry.pre_split:
            train, test = loaded
            notes = [f"{entry.description}: the dataset's own train/test split, used as is "
                     f"({train.n_users:,} users x {train.n_items:,} items)"]
        else:
            cleaned, report = clean(loaded, min_user_count=CORE, min_item_count=CORE)
            if len(cleaned) == 0:
                raise UserError(f"nothing is left of {key} after the {CORE}-core filter")
            if split == "random":
                train, test = splits.random(cleaned, TEST_FRACTION, by_user=True, seed=seed)
                how = f"per-user random holdout: {TEST_FRACTION:.0%} of each user's interactions to test (seed {seed})"
            else:
                if cleaned.timestamps is None:
                    raise UserError(f"{key} has no timestamps: use --split random")
                train, test = splits.leave_last_out(cleaned, 1)
                how = "leave-last-out: each user's latest interaction to test"
            notes = [f"{entry.description}: {len(loaded):,} interactions -> {len(cleaned):,} after the "
                     f"{CORE}-core filter ({cleaned.n_users:,} users x {cleaned.n_items:,} items)", how]
    notes.append(f"{len(train):,} train / {len(test):,} test interactions; implicit feedback (each rating = "
                 f"one interaction)")
    return Prepared(key, train, test, notes)


def fit_and_score(name: str, data: Prepared, steps: Steps, progress: bool, demo: bool = True,
                  metrics: tuple[str, ...] = METRICS, protocol: str = "full", **evaluate_kwargs) -> ModelScore:
    """Fit the registered model ``name`` on binary train data and evaluate it on test."""
    import recforge

    model = build_model(name, progress, demo=demo)
    binary_train = data.train.with_values(None)
    with steps.step(f"fit {name}"):
        start = time.perf_counter()
        model.fit(binary_train)
        fit_s = time.perf_counter() - start
    timed = RecommendTimer(model)
    with steps.step(f"evaluate {name}"):
        start = time.perf_counter()
        table = recforge.evaluate(timed, binary_train, data.test, list(metrics), protocol=protocol,
                                  progress=progress, **evaluate_kwargs)
        evaluate_s = time.perf_counter() - start
    values = {metric: float(table.loc[metric, "value"]) for metric in table.index}
    params = model.get_params() if hasattr(model, "get_params") else {}
    return ModelScore(name, params, values, fit_s, timed.seconds, evaluate_s, model)


def run_demo(dataset: str = "ml-latest-small", models: str | None = None, *, split: str = "random", seed: int = 0,
             data_dir: Any = None, download: bool = True, progress: bool = True):
    """(Prepared data, scores sorted by NDCG@10, skipped models with reasons)."""
    names = resolve_models(models)
    dataset_entry(dataset)          # unknown names fail before any work starts
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    explicit = models is not None
    with Steps(2 + 2 * len(names), "demo", progress) as steps:
        data = prepare(dataset, steps, split=split, seed=seed, data_dir=data_dir, download=download)
        data.protocol.append(FULL_RANKING_NOTE)
        scores, skipped = [], []
        for name in names:
            try:
                scores.append(fit_and_score(name, data, steps, progress))
            except ImportError as exc:  # a model whose optional extra is not installed
                if explicit:
                    raise
                skipped.append((name, str(exc)))
                note(f"skipped {name}: {exc}")
    scores.sort(key=lambda s: (-np.nan_to_num(s.metrics["ndcg@10"], nan=-1.0), s.model))
    return data, scores, skipped


def example_users(data: Prepared, score: ModelScore, seed: int = 0, n_users: int = EXAMPLE_USERS,
                  n: int = EXAMPLE_N) -> list[dict]:
    """For a few seeded test users: their best-rated train items and the model's top-n, with titles."""
    test_csr = data.test.to_csr(values=False)
    train_csr = data.train.to_csr()
    users = _example_user_codes(data, seed, n_users)
    items, _ = score.fitted.recommend(users, n=n)
    title = item_titles(data.train)
    out = []
    for row, user in enumerate(users):
        lo, hi = train_csr.indptr[user], train_csr.indptr[user + 1]
        history = train_csr.indices[lo:hi][np.argsort(-train_csr.data[lo:hi], kind="stable")][:3]
        held_out = set(test_csr.indices[test_csr.indptr[user]:test_csr.indptr[user + 1]].tolist())
        recs = [{"item": title(int(i)), "held_out": int(i) in held_out} for i in items[row] if i >= 0]
        out.append({"user": _plain(data.train.user_ids[int(user)]), "history": [title(int(i)) for i in history],
                    "n_train": int(hi - lo), "recommendations": recs})
    return out


def explain_example(data: Prepared, scores: list[ModelScore], seed: int = 0, n_items: int = 3,
                    n_words: int = 5) -> dict | None:
    """Why a model recommends its top item to the first example user: the history items, words
    and (for a hybrid) components contributing most; contributions sum to the score. The model
    is the best-ranked one that can explain (a hybrid explains through its components' terms and
    their own explanations)."""
    user = _example_user_codes(data, seed, EXAMPLE_USERS)[0]     # the first user of the examples table
    title = item_titles(data.train)

    def user_id(code: int) -> Any:
        return _plain(data.train.user_ids[int(code)])

    for s in scores:
        if not hasattr(s.fitted, "explain"):
            continue
        items, _ = s.fitted.recommend([user], n=1)
        item = int(items[0, 0])
        why = s.fitted.explain(user, item)
        parts = []
        for c in getattr(why, "components", None) or []:
            own = c.explanation
            parts.append({"model": c.model, "contribution": c.contribution,
                          **_reasons(own, title, user_id, n_items, n_words)})
        reasons = _reasons(why, title, user_id, n_items, n_words)
        if parts or reasons["items"] or reasons["users"] or reasons["words"]:
            return {"model": s.model, "user": _plain(data.train.user_ids[int(user)]), "item": title(item),
                    "score": why.score, **reasons, "components": parts}
    return None


def _reasons(why: Any, title, user_id, n_items: int, n_words: int) -> dict:
    """An explanation's top history items (titles), neighbour users and words, with contributions."""
    if why is None:
        return {"items": [], "users": [], "words": []}
    return {"items": [(title(int(j)), c) for j, c in why.top_items(n_items)],
            "users": [(user_id(v), c) for v, c in why.top_users(n_items)],
            "words": why.top_features(n_words)}


def _example_user_codes(data: Prepared, seed: int, n_users: int) -> np.ndarray:
    test_csr = data.test.to_csr(values=False)
    candidates = np.flatnonzero(np.diff(test_csr.indptr))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=min(n_users, candidates.size), replace=False))


def item_titles(inter: Any):
    """code -> display name: the ``title`` metadata column when there is one, else the item id."""
    meta = getattr(inter, "item_metadata", None)
    titles = None
    if meta is not None and "title" in getattr(meta, "columns", ()):
        titles = meta["title"].to_numpy()

    def title(code: int) -> str:
        if titles is not None and isinstance(titles[code], str):
            return titles[code]
        return f"item {_plain(inter.item_ids[code])}"

    return title


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
