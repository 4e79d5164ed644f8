r"""LearnedHybrid: blend weights learned on a validation split carved from the training data.

``fit``: (1) each user with at least two interactions gives ``validation_fraction`` of them
(at least one, seeded at random) to a validation part; (2) fresh copies of the components are
fitted on the rest; (3) for up to ``max_validation_users`` users with validation items, the
candidates are the union of each component's top ``candidates`` items (not in the fitting
part), each described by 2M features (M components) and labelled 1 when in the validation part;
(4) ``learner`` (ridge, logistic or lambdarank: :mod:`recforge.models.hybrid.learners`) learns
one weight per feature; (5) the components are fitted again on all the training data.

Features of (u, i) for component m: its normalised score :math:`\tilde s_m(u, i)`
(``normalize``, as WeightedHybrid, over the candidates m can score) when m knows item i
(:func:`recforge.models.hybrid.blend.known_items`: a collaborative model knows the items with
training interactions, a content model those with a vector), else 0; and the indicator
:math:`[i \notin K_m]`. The score is

.. math:: \mathrm{score}(u, i) = \sum_m [i \in K_m]\, w_m \tilde s_m(u, i)
          + [i \notin K_m]\, b_m,

``weights_`` = :math:`w` and ``unknown_weights_`` = :math:`b` (inspectable, with
``intercept_``, which does not change the ranking): :math:`b_m` is the score component m's
term takes for an item it cannot score, learned from how often such items are chosen in the
validation part (items cold in the fitting part whose interactions all fell in the validation
part), instead of a fixed minimum. The candidate union holds the content component's top list,
so cold items are among the examples.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.models.base import Recommender
from recforge.models.hybrid.blend import BlendRecommender, candidates_of, component_scores, fresh_copy, known_items
from recforge.models.hybrid.fusion import NORMALIZATIONS, normalize_scores
from recforge.models.hybrid.learners import LEARNERS, learn_weights
from recforge.models.training_data import HistoryChunk, TrainingData


class LearnedHybrid(BlendRecommender):
    """Blend whose weights are learned (module docstring)."""

    def __init__(self, models: Sequence[Recommender] | None = None, learner: str = "ridge", normalize: str = "minmax",
                 validation_fraction: float = 0.2, candidates: int = 100, max_validation_users: int = 2000,
                 alpha: float = 1.0, seed: int = 0):
        self.models = models
        self.learner = learner
        self.normalize = normalize
        self.validation_fraction = validation_fraction
        self.candidates = candidates
        self.max_validation_users = max_validation_users
        self.alpha = alpha
        self.seed = seed

    def _check_params(self) -> None:
        self._check_components()
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, got {self.learner!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if not (isinstance(self.validation_fraction, float) and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be a float in (0, 1), got {self.validation_fraction!r}")
        for name in ("candidates", "max_validation_users"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
            raise ValueError(f"alpha must be a number >= 0, got {self.alpha!r}")

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: TrainingData) -> None:
        fit_part, held = self._carve(data)
        fitted = [fresh_copy(m).fit(fit_part) for m in self._declared()]
        X, y, groups = self._examples(fitted, fit_part, held)
        w, b = learn_weights(X, y, groups, self.learner, float(self.alpha))
        w = np.asarray(w, np.float64)
        M = len(fitted)
        self.weights_, self.unknown_weights_ = w[:M].copy(), w[M:].copy()
        self.intercept_ = float(b)
        self.models_ = [fresh_copy(m).fit(data) for m in self._declared()]

    def _carve(self, data: TrainingData) -> tuple[Any, sp.csr_matrix]:
        """(what the components are fitted on, the validation matrix users x items)."""
        rng = np.random.default_rng(self.seed)
        inter = data.interactions
        if inter is not None:
            users = np.asarray(inter.users, np.int64)
        else:
            R = data.matrix.tocoo()
            users = R.row.astype(np.int64)
        n = users.size
        order = np.lexsort((rng.random(n), users))
        counts = np.bincount(users, minlength=data.n_users)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - starts[users[order]]
        quota = np.where(counts >= 2, np.maximum(1, np.floor(self.validation_fraction * counts)), 0)
        held = rank < quota[users]
        if inter is not None:
            fit_part = inter.select(~held)
            H = inter.select(held).to_csr()
        else:
            R = data.matrix.tocoo()
            fit_part = sp.csr_matrix((R.data[~held], (R.row[~held], R.col[~held])), shape=R.shape)
            H = sp.csr_matrix((R.data[held], (R.row[held], R.col[held])), shape=R.shape)
        return fit_part, sp.csr_matrix(H)

    def _examples(self, fitted: list[Recommender], fit_part: Any, held: sp.csr_matrix):
        """Features, labels and groups over the union of the components' top candidates."""
        rng = np.random.default_rng(self.seed)
        users = np.flatnonzero(np.diff(held.indptr))
        if users.size > self.max_validation_users:
            users = np.sort(rng.choice(users, self.max_validation_users, replace=False))
        base = fitted[0]
        known = [known_items(m) for m in fitted]
        feats, labels, groups = [], [], []
        step = max(1, 2_000_000 // max(base.n_items_, 1))
        for start in range(0, users.size, step):
            block = users[start:start + step]
            chunk = HistoryChunk(block, base.user_items_[block], from_caller=False)
            cand = candidates_of(chunk)
            S = [component_scores(m, block, chunk, base.n_items_) for m in fitted]
            pool = np.zeros_like(cand)
            for dense in S:
                masked = np.where(cand, dense, -np.inf)
                top = np.argsort(-masked, axis=1, kind="stable")[:, :int(self.candidates)]
                pool[np.repeat(np.arange(block.size), top.shape[1]), top.ravel()] = True
            pool &= cand
            r, c = np.nonzero(pool)
            feats.append(_features(S, cand, known, self.normalize, r, c))
            labels.append(np.asarray(held[block][r, c]).reshape(-1) > 0)
            groups.append(block[r])
        if not feats:
            raise ValueError("no user has two or more interactions: nothing to validate the blend on")
        return np.concatenate(feats), np.concatenate(labels).astype(np.float64), np.concatenate(groups)

    # ------------------------------------------------------------------ scoring
    def _terms(self, codes, history) -> Any:
        blocks = [self._scores_of(m, codes, history) for m in self.models_]
        cand = candidates_of(history)
        terms = []
        for S, K, w, b in zip(blocks, self._known(), self.weights_, self.unknown_weights_):
            terms.append(np.where(K, float(w) * normalize_scores(S, cand & K, self.normalize), float(b)))
        return terms, blocks

    def _state(self) -> dict[str, Any]:
        return {"weights_": self.weights_, "unknown_weights_": self.unknown_weights_, "intercept_": self.intercept_}

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self.weights_ = np.asarray(self.weights_, np.float64)
        self.unknown_weights_ = np.asarray(self.unknown_weights_, np.float64)
        for name in ("weights_", "unknown_weights_"):
            if getattr(self, name).shape != (len(self.models_),):
                raise ValueError(f"{name} must hold one weight per component ({len(self.models_)})")


def _features(S: list[np.ndarray], cand: np.ndarray, known: list[np.ndarray], normalize: str,
              r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Rows (r, c) of the 2M features: each component's normalised score where it knows the
    item (else 0), then each component's "does not know the item" indicator."""
    cols = []
    for dense, K in zip(S, known):
        normed = normalize_scores(dense, cand & K, normalize)
        cols.append(np.where(K[c], normed[r, c], 0.0))
    cols.extend((~K[c]).astype(np.float64) for K in known)
    return np.stack(cols, axis=1)
