r"""EmbeddingRecommender: the base of every model that scores by user and item vectors.

A subclass learns, in ``_fit``, an item matrix :math:`V` (``item_factors_``, n_items x d) and
either a user matrix :math:`U` (``user_factors_``, n_users x d) or a user encoder (it overrides
:meth:`EmbeddingRecommender._user_vectors`), and optionally item biases :math:`b`
(``item_bias_``). Then

.. math:: \mathrm{score}(u, i) = q_u \cdot v_i + b_i

where :math:`q_u` is the user's vector: :math:`U_u` for a known user recommended from the stored
history, otherwise a *fold-in* of the given history. The default fold-in is the value-weighted
mean of the history items' vectors,

.. math:: q = \frac{\sum_{j \in H} h_j v_j}{\sum_{j \in H} h_j},

(the zero vector for an empty history, which ranks items by bias, then by code); models with a
better rule (a few propagation steps, a sequence encoder) override ``_fold_in``.

``recommend`` scores the catalogue through :func:`recforge.kernels.dense_topk` with the
exclusion fused into the selection, chunk by chunk; ``predict`` takes row dot products;
``similar_items`` / ``similar_users`` rank by cosine through the same kernel, never returning
the query itself. This module imports numpy only.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.kernels import dense_topk, prepare_dense_items
from recforge.kernels import _validation as v
from recforge.models.base import Recommender, check_code_range, ids_of_codes, known_codes
from recforge.models.training_data import HistoryChunk

SCORE_METRICS = ("dot", "cosine")


class EmbeddingRecommender(Recommender):
    """Scores by user/item vectors (module docstring). Subclasses implement ``_fit`` and set
    ``item_factors_`` and ``user_factors_`` (or override ``_user_vectors``)."""

    #: how a user vector meets an item vector: "dot" (inner product) or "cosine"
    score_metric = "dot"

    # ------------------------------------------------------------------ vectors
    def _threads(self) -> int:
        return int(getattr(self, "num_threads", 0) or 0)

    def _item_matrix(self) -> np.ndarray:
        """The item side handed to dense_topk: V, or [V | b] when the model has item biases."""
        return self._item_side()[0]

    def _prepared_items(self):
        """``_item_matrix`` prepared once for dense_topk (cast, normalised and packed; see
        :func:`recforge.kernels.prepare_dense_items`), rebuilt when the factors are replaced."""
        return self._item_side()[1]

    def _item_side(self):
        bias = getattr(self, "item_bias_", None)
        cached = getattr(self, "_item_side_cache", None)
        if cached is not None and cached[0] is self.item_factors_ and cached[1] is bias:
            return cached[2]
        V = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        if bias is not None:
            if self.score_metric != "dot":
                raise ValueError("item biases apply to the dot score only")
            V = np.ascontiguousarray(np.hstack([V, np.asarray(bias, np.float32).reshape(-1, 1)]))
        side = (V, prepare_dense_items(V, metric=self.score_metric, num_threads=self._threads()))
        self._item_side_cache = (self.item_factors_, bias, side)
        return side

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the prepared operands (rebuilt on first use where it is loaded)."""
        state = super().__getstate__()
        state.pop("_item_side_cache", None)
        state.pop("_cosine_cache", None)
        return state

    def _prepared_cosine(self, M: np.ndarray, key: str):
        """M (item or user vectors) prepared once for cosine ranking, rebuilt when M is replaced."""
        cache = self.__dict__.setdefault("_cosine_cache", {})
        cached = cache.get(key)
        if cached is None or cached[0] is not M:
            cached = (M, prepare_dense_items(np.asarray(M, np.float32), metric="cosine",
                                             num_threads=self._threads()))
            cache[key] = cached
        return cached[1]

    def _query_matrix(self, Q: np.ndarray) -> np.ndarray:
        """User vectors shaped to meet ``_item_matrix`` (a column of ones for the bias)."""
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if getattr(self, "item_bias_", None) is not None:
            Q = np.ascontiguousarray(np.hstack([Q, np.ones((Q.shape[0], 1), np.float32)]))
        return Q

    def _user_vectors(self, codes: np.ndarray, history: HistoryChunk) -> np.ndarray:
        """One vector per requested user: the stored one for known users recommended from their
        stored history, the fold-in of the history otherwise."""
        U = getattr(self, "user_factors_", None)
        if U is None:
            return self._fold_in(history)
        if history.from_caller or (codes < 0).any():
            return self._fold_in(history)
        return np.asarray(U[codes], dtype=np.float32)

    def _fold_in(self, history: HistoryChunk) -> np.ndarray:
        """Value-weighted mean of the history items' vectors (zero for an empty history)."""
        H = history.rows
        V = np.asarray(self.item_factors_, dtype=np.float32)
        total = np.asarray(H.sum(axis=1)).reshape(-1)
        Q = np.asarray(H @ V, dtype=np.float32)
        scale = np.divide(1.0, total, out=np.zeros_like(total, dtype=np.float64), where=total != 0)
        return (Q * scale[:, None]).astype(np.float32)

    # ------------------------------------------------------------------ contract
    def _recommend_chunk(self, codes, history, n, exclude):
        Q = self._query_matrix(self._user_vectors(codes, history))
        return dense_topk(Q, self._prepared_items(), n, exclude=exclude, metric=self.score_metric,
                          num_threads=self._threads())

    def _predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(users, return_inverse=True)
        chunk = HistoryChunk(uniq, self.user_items_[uniq], stored=self._stored_sequences)
        Q = self._query_matrix(self._user_vectors(uniq, chunk)).astype(np.float64)
        V = self._item_matrix().astype(np.float64)
        q, w = Q[inv], V[items]
        if self.score_metric == "cosine":
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), np.finfo(np.float64).tiny)
            w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        return np.einsum("ij,ij->i", q, w)

    def similar_items(self, items: Any, n: int = 10, *, ids: bool = False):
        """The n items whose vectors have the highest cosine with each item's (never itself)."""
        self._require_fitted()
        return self._similar(items, n, ids, self.item_factors_, self.item_ids_)

    def similar_users(self, users: Any, n: int = 10, *, ids: bool = False):
        """The n users whose vectors have the highest cosine with each user's (never itself)."""
        self._require_fitted()
        U = getattr(self, "user_factors_", None)
        if U is None:
            raise NotImplementedError(f"{type(self).__name__} encodes users from their history and stores "
                                      f"no user vectors to compare")
        return self._similar(users, n, ids, U, self.user_ids_)

    def _similar(self, which: Any, n: int, ids: bool, vectors: np.ndarray, idmap):
        n = v.check_positive_int(n, "n")
        key = "items" if idmap is self.item_ids_ else "users"
        prepared = self._prepared_cosine(vectors, key)
        M = np.asarray(vectors, np.float32)
        q = np.asarray(which).reshape(-1)
        if ids:
            q = known_codes(idmap, q, "items" if idmap is self.item_ids_ else "users")
        else:
            if q.size and q.dtype.kind not in "iu":
                raise TypeError(f"codes must be integers (or pass ids=True), got dtype {q.dtype}")
            q = q.astype(np.int64)
            check_code_range(q, M.shape[0], "items" if idmap is self.item_ids_ else "users")
        itself = sp.csr_matrix((np.ones(q.size, np.float32), q, np.arange(q.size + 1)), shape=(q.size, M.shape[0]))
        found, scores = dense_topk(M[q], prepared, n, exclude=itself, metric="cosine", num_threads=self._threads())
        return (ids_of_codes(idmap, found), scores) if ids else (found, scores)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"item_factors_": np.asarray(self.item_factors_, np.float32)}
        for key in ("user_factors_", "item_bias_"):
            value = getattr(self, key, None)
            if value is not None:
                state[key] = np.asarray(value, np.float32)
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        n_items = self.n_items_
        V = np.asarray(state["item_factors_"])
        if V.ndim != 2 or V.shape[0] != n_items:
            raise ValueError(f"item_factors_ must have {n_items} rows, got shape {V.shape}")
        U = state.get("user_factors_")
        if U is not None and (np.ndim(U) != 2 or U.shape != (self.n_users_, V.shape[1])):
            raise ValueError(f"user_factors_ must have shape ({self.n_users_}, {V.shape[1]}), got {np.shape(U)}")
        super()._restore(state)
