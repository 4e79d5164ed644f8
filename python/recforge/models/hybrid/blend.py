"""The shared base of the hybrids: components, their full score rows, fusion, save/load.

A hybrid holds component models, fitted or not (None: ItemKNN, UserKNN and ContentKNN(tfidf);
for SwitchingHybrid ItemKNN then ContentKNN). ``fit`` fits a fresh copy of each unfitted
component (``type(m)(**m.get_params())``) on the same training data and keeps fitted ones as
they are (they must cover the same users and items); the fitted components are ``models_``.

At request time each component scores every item for the chunk's users (its ``recommend``
with ``n = n_items`` and nothing excluded, from the stored interactions, or from the given
``history=`` rows — as sequences for a component that requires them), the hybrid fuses those
score rows (:meth:`BlendRecommender._fused`: the sum of one term per component,
:meth:`BlendRecommender._terms`), and the top n come from
:func:`recforge.models.ranking.topn_dense` with the exclusion applied. The candidates of a
row, over which the fusion's statistics and ranks are taken, are the items not in the user's
history that the component can score (:func:`known_items`; an item a component does not know
gets a neutral term from it, or none, never its minimum: :mod:`recforge.models.hybrid.fusion`,
and LearnedHybrid learns the term). ``predict`` reads the same fused
rows, and ``explain(user, item)`` lists the terms (they sum to the score) with each
component's own explanation.

Saved models: each fitted component is saved to ``components/<k>/`` inside the hybrid's folder
and loaded back by ``recforge.load``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.models.base import Recommender, dense_blocks
from recforge.models.ranking import topn_dense
from recforge.models.training_data import HistoryChunk, TrainingData

COMPONENTS = "components"


def fresh_copy(model: Recommender) -> Recommender:
    """An unfitted model with the same parameters."""
    return type(model)(**model.get_params())


def fit_component(model: Recommender, data: TrainingData) -> Recommender:
    """``model`` itself when fitted (checked against ``data``'s shape), else a fitted fresh copy."""
    if not isinstance(model, Recommender):
        raise TypeError(f"every component must be a recforge model, got {type(model).__name__}")
    if model.is_fitted:
        if (model.n_users_, model.n_items_) != (data.n_users, data.n_items):
            raise ValueError(f"the fitted component {type(model).__name__} covers {model.n_users_} users x "
                             f"{model.n_items_} items, the training data {data.n_users} x {data.n_items}: "
                             f"fit it on the same data, or pass it unfitted")
        return model
    return fresh_copy(model).fit(data)


def component_scores(model: Recommender, codes: np.ndarray, history: HistoryChunk, n_items: int) -> np.ndarray:
    """Every item's score for each user of the chunk (float64, len(codes) x n_items)."""
    m = codes.size
    if not history.from_caller and (codes >= 0).all():
        items, scores = model.recommend(codes, n=n_items, exclude_seen=False)
    else:
        given: Any = history.sequences if "sequences" in getattr(model, "requires", ()) else history.rows
        items, scores = model.recommend(np.where(codes >= 0, codes, -1), n=n_items, exclude_seen=False,
                                        history=given)
    S = np.full((m, n_items), -np.inf)
    rows = np.repeat(np.arange(m), items.shape[1]).reshape(items.shape)
    ok = items >= 0
    S[rows[ok], items[ok]] = scores[ok]
    if np.isneginf(S).any():                      # a component that scored fewer than every item
        finite = np.where(np.isfinite(S), S, np.nan)
        low = np.nan_to_num(np.nanmin(finite, axis=1, keepdims=True), nan=0.0)
        S = np.where(np.isfinite(S), S, low - 1.0)
    return S


def known_items(model: Recommender) -> np.ndarray:
    """Boolean over the items: those ``model`` can score from what it learned. A model with a
    ``known_items()`` method says (ContentKNN: the items with a non-zero vector); otherwise the
    items with at least one training interaction (what a collaborative model learns from)."""
    own = getattr(model, "known_items", None)
    if callable(own):
        return np.asarray(own(), dtype=bool).reshape(-1)
    R = model.user_items_
    return np.bincount(R.indices, minlength=R.shape[1]) > 0


def candidates_of(history: HistoryChunk) -> np.ndarray:
    """Boolean users x items: True for items not in the user's history."""
    R = history.rows
    mask = np.ones(R.shape, dtype=bool)
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    mask[rows, R.indices] = False
    return mask


class BlendRecommender(Recommender):
    """Base of the hybrids (module docstring). Subclasses set ``_component_params`` (the names of
    the parameters that hold models) and implement ``_terms(codes, history)`` (one dense
    users x items term per component; the fused score is their sum)."""

    #: constructor parameters holding a model or a list of models
    _component_params: tuple[str, ...] = ("models",)

    # ------------------------------------------------------------------ components
    def _component_value(self, name: str) -> Any:
        """The parameter ``name``, or its default components when it is None."""
        value = getattr(self, name)
        return default_components()[name] if value is None else value

    def _declared(self) -> list[Recommender]:
        out: list[Recommender] = []
        for name in self._component_params:
            value = self._component_value(name)
            out.extend(value if isinstance(value, (list, tuple)) else [value])
        return out

    def _check_components(self) -> None:
        models = self._declared()
        if not models:
            raise ValueError("a hybrid needs at least one component model")
        for m in models:
            if not isinstance(m, Recommender):
                raise TypeError(f"every component must be a recforge model, got {type(m).__name__}")

    @property
    def requires(self) -> frozenset:  # type: ignore[override]
        out: set[str] = set()
        for m in self._declared():
            out |= set(getattr(m, "requires", ()))
        return frozenset(out)

    def _fit(self, data: TrainingData) -> None:
        self.models_ = [fit_component(m, data) for m in self._declared()]

    def _scores_of(self, model: Recommender, codes: np.ndarray, history: HistoryChunk) -> np.ndarray:
        return component_scores(model, codes, history, self.n_items_)

    def _known(self) -> list[np.ndarray]:
        """Per fitted component, the items it can score (:func:`known_items`)."""
        return [known_items(m) for m in self.models_]

    def _terms(self, codes: np.ndarray, history: HistoryChunk) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(each component's term of the fused score, each component's own scores), dense
        users x items blocks; the terms sum to the fused score."""
        raise NotImplementedError

    def _fused(self, codes: np.ndarray, history: HistoryChunk) -> np.ndarray:
        return np.sum(self._terms(codes, history)[0], axis=0)

    def explain(self, user: Any, item: Any, *, history: Any = None, ids: bool = False):
        """Why ``item`` scores what it does for ``user``: each component's term of the fused score
        (they sum to it), its own score, whether it knows the item, and its own explanation when
        it has an ``explain`` (else None). ``history``: as in recommend (one row). Returns a
        :class:`recforge.models.hybrid.explanation.HybridExplanation`."""
        from recforge.models.base import check_code_range, known_codes
        from recforge.models.hybrid.explanation import ComponentContribution, HybridExplanation

        self._require_fitted()
        codes = self._user_codes([user], ids, allow_unknown=history is not None)
        hist = self._history(codes, [user], history, ids)
        i = int(known_codes(self.item_ids_, [item], "item")[0]) if ids else int(item)
        check_code_range(np.array([i]), self.n_items_, "item")
        terms, raw = self._terms(codes, hist)
        known = self._known()
        parts = []
        for k, (model, term, own, K) in enumerate(zip(self.models_, terms, raw, known)):
            parts.append(ComponentContribution(k, type(model).__name__, float(term[0, i]), float(own[0, i]),
                                               bool(K[i]), _own_explanation(model, user, item, history, ids)))
        return HybridExplanation(float(sum(p.contribution for p in parts)), components=parts)

    # ------------------------------------------------------------------ contract
    def _recommend_chunk(self, codes, history, n, exclude):
        m = codes.size
        items = np.empty((m, n), dtype=np.int64)
        scores = np.empty((m, n), dtype=np.float32)
        for part in dense_blocks(m, self.n_items_):
            sub = history.part(part)
            S = self._fused(codes[part], sub)
            items[part], scores[part] = topn_dense(S, n, None if exclude is None else exclude[part])
        return items, scores

    def _predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(users, return_inverse=True)
        out = np.empty(users.size, dtype=np.float64)
        for part in dense_blocks(uniq.size, self.n_items_):
            block = uniq[part]
            chunk = HistoryChunk(block, self._clean_rows(self.user_items_[block]), stored=self._stored_sequences,
                                 from_caller=False)
            S = self._fused(block, chunk)
            sel = np.flatnonzero((inv >= part.start) & (inv < part.stop))
            out[sel] = S[inv[sel] - part.start, items[sel]]
        return out

    # ------------------------------------------------------------------ persistence
    def _params_to_save(self, folder: Path) -> dict[str, Any]:
        """The parameters with each component replaced by ``{"component": k}`` (its saved folder)."""
        params = self.get_params()
        k = 0
        for name in self._component_params:
            value = self._component_value(name)
            listed = isinstance(value, (list, tuple))
            refs = []
            for _ in (value if listed else [value]):
                self.models_[k].save(Path(folder) / COMPONENTS / str(k))
                refs.append({"component": k})
                k += 1
            params[name] = refs if listed else refs[0]
        return params

    @classmethod
    def _params_from_saved(cls, params: dict[str, Any], folder: Path) -> dict[str, Any]:
        from recforge.models.artifacts import load

        def model(ref: Any) -> Recommender:
            if not (isinstance(ref, dict) and isinstance(ref.get("component"), int)):
                raise ValueError(f"a component reference must be {{'component': k}}, got {ref!r}")
            return load(Path(folder) / COMPONENTS / str(ref["component"]))

        out = dict(params)
        for name in cls._component_params:
            value = out[name]
            out[name] = [model(r) for r in value] if isinstance(value, (list, tuple)) else model(value)
        return out

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self.models_ = self._declared()
        for m in self.models_:
            if (m.n_users_, m.n_items_) != (self.n_users_, self.n_items_):
                raise ValueError("a saved component does not cover the hybrid's users and items")


def _own_explanation(model: Recommender, user: Any, item: Any, history: Any, ids: bool):
    """The component's own explanation of the pair, or None when it has none."""
    if not callable(getattr(model, "explain", None)):
        return None
    try:
        return model.explain(user, item, history=history, ids=ids)
    except NotImplementedError:                   # e.g. KNN with explicit feedback
        return None


def default_components() -> dict[str, Any]:
    """What a hybrid blends when given no components: neighbourhood CF and TF-IDF content."""
    from recforge.models.content.contentknn import ContentKNN
    from recforge.models.neighbourhood.itemknn import ItemKNN
    from recforge.models.neighbourhood.userknn import UserKNN
    return {"models": [ItemKNN(k=40, progress=False), UserKNN(k=40, progress=False), ContentKNN()],
            "primary": ItemKNN(k=40, progress=False), "fallback": ContentKNN()}


def check_weights(weights: Sequence[float] | None, n: int, name: str = "weights") -> np.ndarray:
    """Weights as float64 (None: all ones), one per component, finite."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n or not np.all(np.isfinite(w)):
        raise ValueError(f"{name} must hold one finite number per component ({n}), got {weights!r}")
    return w
