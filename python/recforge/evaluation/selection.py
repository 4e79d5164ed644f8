"""Model selection: cross-validation, grid search and Bayesian (optuna) search.

Every function builds fresh models with ``make_model(**params)`` (``make_model()`` for
``cross_validate``), fits them with ``model.fit(train)`` and scores them with
:func:`recforge.evaluate` (any of its keyword arguments — ``protocol``, ``exclude_train``,
``batch_size`` ... — pass through). Runs are independent, so ``num_threads > 1`` runs them in
threads (``num_threads=0``: one per core, as everywhere in recforge; the old ``n_jobs`` still
works, with a DeprecationWarning, ``n_jobs=-1`` meaning every core): recforge kernels release the GIL, so fits and evaluations overlap on several cores.
Progress bars use tqdm when it is installed (``pip install recforge[progress]``) and
``progress=True``; without tqdm there is simply no bar.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from recforge.backend import check_int
from recforge.evaluation.names import lower_is_better, parse_metrics
from recforge._progress import progress_bar
from recforge.evaluation.protocols import evaluate, import_pandas


# ----------------------------------------------------------------------------- helpers

def resolve_jobs(num_threads: int, n_jobs: int | None = None) -> int:
    """Worker threads for the runs: ``num_threads`` (0 = one per core), or the deprecated
    ``n_jobs`` (-1 = one per core) when it is given."""
    if n_jobs is not None:
        warnings.warn("n_jobs is deprecated; use num_threads (0 means every core)", DeprecationWarning,
                      stacklevel=3)
        n_jobs = check_int(n_jobs, "n_jobs", -1)
        if n_jobs == 0:
            raise ValueError("n_jobs must be >= 1, or -1 for every core, got 0")
        num_threads = 0 if n_jobs == -1 else n_jobs
    num_threads = check_int(num_threads, "num_threads", 0)
    return num_threads or (os.cpu_count() or 1)


def run_all(task: Callable[[Any], Any], items: Sequence[Any], n_jobs: int, bar) -> list[Any]:
    """task(item) for every item, in order, on n_jobs threads, ticking the bar per finished item."""
    def ticking(item):
        result = task(item)
        bar.update(1)
        return result

    try:
        if n_jobs == 1 or len(items) <= 1:
            return [ticking(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(n_jobs, len(items))) as pool:
            return list(pool.map(ticking, items))
    finally:
        bar.close()


def fit_and_score(make_model: Callable[..., Any], params: Mapping[str, Any], train: Any, test: Any,
                  metrics: Sequence[str], evaluate_kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """Fit one model and evaluate it: ({metric: value, fit_time, score_time}, fitted model)."""
    model = make_model(**params)
    start = time.perf_counter()
    model.fit(train)
    fitted = time.perf_counter()
    table = evaluate(model, train, test, metrics, **evaluate_kwargs)
    row = {label: float(value) for label, value in table["value"].items()}
    row["fit_time"] = fitted - start
    row["score_time"] = time.perf_counter() - fitted
    return row, model


def split_pair(fold: Any, index: int) -> tuple[Any, Any]:
    """(train, test) from a pair or from an object with .train and .test."""
    if hasattr(fold, "train") and hasattr(fold, "test"):
        return fold.train, fold.test
    try:
        train, test = fold
    except (TypeError, ValueError):
        raise TypeError(f"fold {index} must be a (train, test) pair or have .train and .test, "
                        f"got {type(fold).__name__}") from None
    return train, test


def make_folds(data: Any, folds: int | Iterable[Any], seed: int) -> list[tuple[Any, Any]]:
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        if folds < 2:
            raise ValueError(f"folds must be >= 2 when given as a count, got {folds}")
        if data is None:
            raise ValueError("cross_validate needs data when folds is a count")
        try:
            from recforge.data import split
            kfold = split.kfold
        except (ImportError, AttributeError):
            raise ImportError("folds given as a count needs recforge.data.split.kfold; pass an iterable "
                              "of (train, test) pairs instead") from None
        folds = kfold(data, k=int(folds), seed=seed)
    pairs = [split_pair(f, i) for i, f in enumerate(folds)]
    if not pairs:
        raise ValueError("folds is empty")
    return pairs


def objective_of(metrics: Sequence[str], objective: str | None) -> tuple[str, bool]:
    """(label of the metric to optimise, whether lower is better)."""
    labels = [s.label for s in parse_metrics(metrics)]
    if objective is None:
        objective = labels[0]
    else:
        objective = parse_metrics([objective])[0].label
        if objective not in labels:
            raise ValueError(f"objective {objective!r} is not among the metrics {labels}")
    return objective, lower_is_better(objective)


# ----------------------------------------------------------------------------- cross-validation

@dataclass
class CrossValidationResult:
    """``folds``: one row per fold (metrics, fit_time, score_time); ``summary``: mean and std per column."""

    folds: Any
    summary: Any

    def __repr__(self) -> str:
        return f"per fold:\n{self.folds}\n\nsummary:\n{self.summary}"


def cross_validate(make_model: Callable[[], Any], data: Any = None, folds: int | Iterable[Any] = 5,
                   metrics: Sequence[str] = ("ndcg@10", "recall@20"), *, num_threads: int = 1,
                   progress: bool = True, seed: int = 0, n_jobs: int | None = None,
                   **evaluate_kwargs: Any) -> CrossValidationResult:
    """Fit ``make_model()`` on each fold's train part and evaluate on its test part.

    ``folds``: an iterable of ``(train, test)`` pairs (or objects with ``.train``/``.test``,
    e.g. the folds of :mod:`recforge.data.split`), or a count k, in which case
    ``recforge.data.split.kfold(data, k=k, seed=seed)`` makes them. Returns a
    :class:`CrossValidationResult`: the per-fold table and its mean and (population, ddof=0)
    standard deviation, as Surprise reports them.
    """
    pd = import_pandas()
    metrics = [s.label for s in parse_metrics(metrics)]
    pairs = make_folds(data, folds, seed)
    n_jobs = resolve_jobs(num_threads, n_jobs)
    bar = progress_bar(len(pairs), "cross-validation", progress)
    results = run_all(lambda pair: fit_and_score(make_model, {}, pair[0], pair[1], metrics, evaluate_kwargs)[0],
                      pairs, n_jobs, bar)
    table = pd.DataFrame(results, index=pd.RangeIndex(len(results), name="fold"))
    summary = pd.DataFrame({"mean": table.mean(axis=0), "std": table.std(axis=0, ddof=0)})
    summary.index.name = "metric"
    return CrossValidationResult(table, summary)


# ----------------------------------------------------------------------------- search

@dataclass
class SearchResult:
    """``results``: one row per configuration (parameters, metrics, times), best first;
    ``best_params``/``best_score`` by ``objective``; ``best_model``: that configuration's
    model, fitted on train."""

    results: Any
    best_params: dict[str, Any]
    best_score: float
    objective: str
    best_model: Any = field(default=None, repr=False)
    study: Any = field(default=None, repr=False)


def expand_grid(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every combination of a {name: values} grid (or of each grid in a list), like sklearn's ParameterGrid."""
    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    if not grids:
        raise ValueError("grid is empty")
    combos: list[dict[str, Any]] = []
    for g in grids:
        if not isinstance(g, Mapping):
            raise TypeError(f"grid must be a dict of parameter lists or a list of such dicts, got {type(g).__name__}")
        names = sorted(g)
        values = []
        for name in names:
            vals = g[name]
            if isinstance(vals, (str, bytes)) or not isinstance(vals, Iterable):
                raise TypeError(f"grid[{name!r}] must be a list of values, got {type(vals).__name__}")
            vals = list(vals)
            if not vals:
                raise ValueError(f"grid[{name!r}] is empty")
            values.append(vals)
        combos.extend(dict(zip(names, combo)) for combo in itertools.product(*values))
    return combos


def _search_table(pd, params_list, rows, objective, lower):
    table = pd.DataFrame([{**p, **r} for p, r in zip(params_list, rows)])
    order = np.argsort(table[objective].to_numpy() * (1 if lower else -1), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    table.index.name = "rank"
    return table, [int(i) for i in order]


def grid_search(make_model: Callable[..., Any], grid: Any, train: Any, valid: Any,
                metrics: Sequence[str] = ("ndcg@10",), *, objective: str | None = None, num_threads: int = 1,
                progress: bool = True, n_jobs: int | None = None, **evaluate_kwargs: Any) -> SearchResult:
    """Fit ``make_model(**params)`` on ``train`` for every combination of ``grid`` and evaluate on ``valid``.

    ``objective`` (default: the first metric) picks the best; lower is better for rmse, mae,
    gini and average_popularity, higher for the rest. Ties keep the earlier configuration.
    """
    pd = import_pandas()
    metrics = [s.label for s in parse_metrics(metrics)]
    objective, lower = objective_of(metrics, objective)
    combos = expand_grid(grid)
    n_jobs = resolve_jobs(num_threads, n_jobs)
    best: dict[str, Any] = {}
    lock = threading.Lock()

    def run(i_params):
        i, params = i_params
        row, model = fit_and_score(make_model, params, train, valid, metrics, evaluate_kwargs)
        score = row[objective]
        with lock:  # keep only the best fitted model, not every one
            better = not best or (score < best["score"] if lower else score > best["score"]) or (
                score == best["score"] and i < best["i"])
            if better and np.isfinite(score):
                best.update(score=score, i=i, model=model)
        return row

    bar = progress_bar(len(combos), "grid search", progress)
    rows = run_all(run, list(enumerate(combos)), n_jobs, bar)
    table, order = _search_table(pd, combos, rows, objective, lower)
    i = best.get("i", order[0])
    return SearchResult(table, dict(combos[i]), float(rows[i][objective]), objective, best.get("model"))


def _suggest(trial, name: str, spec: Any):
    """One parameter from a space entry: list -> categorical; (low, high) ints -> int;
    (low, high) floats -> float; (low, high, "log") -> log scale; an optuna distribution as is."""
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        low, high = spec[0], spec[1]
        log = len(spec) == 3 and spec[2] == "log"
        if len(spec) == 3 and not log:
            raise ValueError(f"space[{name!r}]: the third element may only be 'log', got {spec[2]!r}")
        if isinstance(low, (int, np.integer)) and isinstance(high, (int, np.integer)) and not isinstance(low, bool):
            return trial.suggest_int(name, int(low), int(high), log=log)
        return trial.suggest_float(name, float(low), float(high), log=log)
    try:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    except ImportError:  # pragma: no cover
        CategoricalDistribution = FloatDistribution = IntDistribution = ()
    if isinstance(spec, CategoricalDistribution):
        return trial.suggest_categorical(name, list(spec.choices))
    if isinstance(spec, IntDistribution):
        return trial.suggest_int(name, spec.low, spec.high, step=spec.step, log=spec.log)
    if isinstance(spec, FloatDistribution):
        return trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
    raise TypeError(f"space[{name!r}] must be a list of choices, a (low, high[, 'log']) tuple or an optuna "
                    f"distribution, got {spec!r}")


def bayes_search(make_model: Callable[..., Any], space: Any, train: Any, valid: Any,
                 metrics: Sequence[str] = ("ndcg@10",), *, n_trials: int = 20, objective: str | None = None,
                 seed: int = 0, timeout: float | None = None, num_threads: int = 1, progress: bool = True,
                 n_jobs: int | None = None, **evaluate_kwargs: Any) -> SearchResult:
    """Bayesian search with optuna's TPE sampler (seeded): ``n_trials`` configurations drawn from
    ``space``, each fitted on ``train`` and evaluated on ``valid``.

    ``space``: ``{name: spec}`` with spec a list of choices, ``(low, high)`` (ints: integer
    range; floats: real range), ``(low, high, "log")`` or an optuna distribution; or a
    callable ``space(trial) -> params``. Needs optuna (``pip install recforge[tune]``).
    ``SearchResult.study`` is the optuna study.
    """
    try:
        import optuna
    except ImportError:
        raise ImportError("bayes_search needs optuna: pip install recforge[tune]") from None
    pd = import_pandas()
    metrics = [s.label for s in parse_metrics(metrics)]
    objective, lower = objective_of(metrics, objective)
    n_trials = int(n_trials)
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    n_jobs = resolve_jobs(num_threads, n_jobs)
    if not callable(space):
        if not isinstance(space, Mapping) or not space:
            raise TypeError("space must be a non-empty {name: spec} dict or a callable space(trial) -> params")
        entries = dict(space)
        space = lambda trial: {name: _suggest(trial, name, spec) for name, spec in entries.items()}  # noqa: E731

    records: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    best: dict[str, Any] = {}
    lock = threading.Lock()

    def run(trial):
        params = space(trial)
        row, model = fit_and_score(make_model, params, train, valid, metrics, evaluate_kwargs)
        score = row[objective]
        with lock:
            records[trial.number] = (params, row)
            if np.isfinite(score) and (not best or (score < best["score"] if lower else score > best["score"])):
                best.update(score=score, model=model, number=trial.number)
        for key, value in row.items():
            trial.set_user_attr(key, value)
        return score

    bar = progress_bar(n_trials, "bayes search", progress)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the bar and the table report progress
    try:
        study = optuna.create_study(direction="minimize" if lower else "maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(run, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs,
                       callbacks=[lambda s, t: bar.update(1)])
    finally:
        optuna.logging.set_verbosity(verbosity)
        bar.close()
    if not records:
        raise RuntimeError("bayes_search finished no trial (timeout too short?)")
    numbers = sorted(records)
    table, order = _search_table(pd, [records[n][0] for n in numbers], [records[n][1] for n in numbers],
                                 objective, lower)
    table.insert(0, "trial", [numbers[i] for i in order])
    number = best.get("number", numbers[0])
    return SearchResult(table, dict(records[number][0]), float(records[number][1][objective]), objective,
                        best.get("model"), study)
