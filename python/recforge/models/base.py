"""The estimator contract every recforge model honours.

    model = ItemKNN(k=40).fit(train)                 # Interactions, or a users x items CSR
    items, scores = model.recommend(users, n=10)      # item codes, shape (len(users), n)
    model.predict(users, items)                       # one score/rating per (user, item) pair
    model.save("model/"); model = recforge.load("model/")

Codes and ids
-------------
``users`` and the returned ``items`` are the integer *codes* of the training data (0..n-1, as
``Interactions`` assigns them and as ``recforge.evaluate`` expects) unless ``ids=True``, which
takes and returns the original ids (``Interactions.user_ids`` / ``item_ids``).

Exactly n, and padding
----------------------
``recommend`` returns n items per user whenever n candidate items remain (items that are
neither seen, when ``exclude_seen``, nor in ``filter_items``). Items are ranked by score,
ties by smaller item code; items the model gives no score to count as score 0 (after the
positive, before the negative scores). Rows with fewer candidates are padded with item -1 and
score -inf (with ``ids=True``: -1 for integer ids, None for string ids).

History
-------
``history=`` gives, per requested user, the interactions to recommend from instead of the
stored ones: a sparse matrix with one row per user and one column per item code, or an
``Interactions`` (matched to the requested users and to the model's items by original id;
items the model never saw are ignored). Users the model never saw may be requested this way
(any code, e.g. -1, or an unknown id with ``ids=True``). Nothing is refitted.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.data.idmap import IdMap
from recforge.kernels import _validation as v
from recforge.models.stored_rows import LEAN_USERS
from recforge.models.training_data import REQUIREMENTS, HistoryChunk, MissingInputError, TrainingData

#: users per internal chunk of ``recommend`` (memory is proportional to it)
CHUNK_USERS = 1024
#: most entries of a dense users x items score block (models that score densely)
DENSE_BLOCK = 4_000_000


def dense_blocks(m: int, n_items: int):
    """Row slices of 0..m so that each block holds at most DENSE_BLOCK scores."""
    step = max(1, DENSE_BLOCK // max(n_items, 1))
    for start in range(0, m, step):
        yield slice(start, min(m, start + step))


class NotFittedError(RuntimeError):
    """A method that needs a fitted model was called before ``fit``."""


def as_user_items(data: Any, name: str = "data", duplicates: str = "sum",
                  keep_zeros: bool = False) -> tuple[sp.csr_matrix, IdMap, IdMap]:
    """A canonical float32 users x items CSR and the two id maps.

    ``data`` is a :class:`recforge.data.Interactions` (its values, else 1 per interaction;
    repeated (user, item) rows combined by ``duplicates``: "sum" or "last"), a scipy sparse
    matrix (ids = codes; duplicate entries summed) or a :class:`TrainingData`. Stored zeros are
    dropped unless ``keep_zeros`` (ratings on a scale that contains 0).
    """
    td = TrainingData.of(data, duplicates=duplicates, keep_zeros=keep_zeros, name=name)
    return td.matrix, td.user_ids, td.item_ids


def pattern(X: sp.spmatrix) -> sp.csr_matrix:
    """X's stored entries as ones (float32 CSR)."""
    X = X.tocsr()
    return sp.csr_matrix((np.ones(X.nnz, dtype=np.float32), X.indices.copy(), X.indptr.copy()), shape=X.shape)


class Recommender:
    """Base class: parameter handling, input checks, chunked ``recommend``, ids, save/load.

    Subclasses store their constructor arguments unchanged (scikit-learn style), learn state
    ending in ``_`` in ``_fit(data)`` (a :class:`TrainingData`), and implement
    ``_recommend_rows(codes, rows, n, exclude)`` (one chunk; models that need the order of a
    history override ``_recommend_chunk(codes, history, n, exclude)`` instead) and
    ``_predict_codes(users, items)``; ``_state()`` / ``_restore()`` list the learned arrays for
    save/load.
    """

    #: True for models whose ``predict`` returns ratings on the training scale
    predicts_ratings = False
    #: parts of the training data the model needs (see ``training_data.REQUIREMENTS``)
    requires: frozenset = frozenset()

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (what ``save`` writes to JSON)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any) -> "Recommender":
        """Learn from ``data`` (Interactions, users x items CSR, or TrainingData); returns self.

        Raises :class:`MissingInputError` when the data lacks a part the model ``requires``."""
        self._check_params()
        unknown = set(self.requires) - set(REQUIREMENTS)
        if unknown:
            raise TypeError(f"{type(self).__name__}.requires names unknown parts {sorted(unknown)}")
        td = TrainingData.of(data, duplicates=self._duplicates(), keep_zeros=self.predicts_ratings)
        td.check(self.requires, type(self).__name__)
        R = td.matrix
        self.user_items_ = R
        self.user_ids_, self.item_ids_ = td.user_ids, td.item_ids
        self.n_users_, self.n_items_ = R.shape
        self._training = td
        if "sequences" in self.requires:
            self.sequence_indptr_, self.sequence_items_ = _flat_sequences(td.sequences)
        self._fit(td)
        return self

    def __getstate__(self) -> dict[str, Any]:
        """What pickling (e.g. Dask shipping a fitted model to workers) keeps: the fitted model,
        not the training input it was fitted on."""
        state = self.__dict__.copy()
        state.pop("_training", None)
        return state

    def _check_params(self) -> None:
        """Validate constructor arguments (called by fit, and by load)."""

    def _duplicates(self) -> str:
        """How repeated (user, item) interactions combine: "sum" (counts) or "last" (ratings)."""
        return "last" if self.predicts_ratings else "sum"

    def _fit(self, data: TrainingData) -> None:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "user_items_")

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(data) first")

    # ------------------------------------------------------------------ recommend
    def recommend(self, users: Any, n: int = 10, *, exclude_seen: bool = True, filter_items: Any = None,
                  history: Any = None, ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The n best items for each user: ``(items, scores)``, each of shape (len(users), n).

        ``exclude_seen``: never recommend an item of the user's history (stored, or ``history=``).
        ``filter_items``: items (codes, or ids with ``ids=True``) never to recommend to anyone.
        ``history``: recommend from these interactions instead of the stored ones (module docs):
        a sparse matrix (one row per user), an Interactions, or a list of item sequences.
        ``ids``: users and returned items are original ids instead of codes.
        See the module docstring for ties, padding and unscored items.
        """
        self._require_fitted()
        n = v.check_positive_int(n, "n")
        codes = self._user_codes(users, ids, allow_unknown=history is not None)
        blocked = self._filter_pattern(filter_items, ids)
        if history is None and 0 < codes.size <= LEAN_USERS:
            lean = self._recommend_stored(codes, n, exclude_seen, blocked)
            if lean is not None:
                return (self._item_ids_of(lean[0]), lean[1]) if ids else lean
        requested = self._history(codes, users, history, ids)
        out_items = np.empty((codes.size, n), dtype=np.int64)
        out_scores = np.empty((codes.size, n), dtype=np.float32)
        for start in range(0, codes.size, CHUNK_USERS):
            part = slice(start, start + CHUNK_USERS)
            chunk = requested.part(part)
            exclude = self._exclusion(chunk.rows, blocked, exclude_seen)
            out_items[part], out_scores[part] = self._recommend_chunk(codes[part], chunk, n, exclude)
        if ids:
            return self._item_ids_of(out_items), out_scores
        return out_items, out_scores

    def _recommend_chunk(self, codes: np.ndarray, history: HistoryChunk, n: int,
                         exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """One chunk of recommend; models that need the order of a history override this and read
        ``history.sequences``."""
        return self._recommend_rows(codes, history.rows, n, exclude)

    def _recommend_rows(self, codes: np.ndarray, rows: sp.csr_matrix, n: int,
                        exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _recommend_stored(self, codes: np.ndarray, n: int, exclude_seen: bool,
                          blocked: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """The lean path for a few known users from their stored rows (``recommend`` with no
        ``history``): the same ``(items, scores)`` as the general path, or None to take it.
        ``blocked``: sorted unique filtered codes. Models override it where it pays
        (see :mod:`recforge.models.stored_rows`)."""
        return None

    def _user_codes(self, users: Any, ids: bool, allow_unknown: bool) -> np.ndarray:
        arr = np.asarray(users)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ValueError(f"users must be 1-D, got shape {arr.shape}")
        if ids:
            return known_codes(self.user_ids_, arr, "users", missing=-1 if allow_unknown else "raise")
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"users must be integer user codes (or pass ids=True), got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        outside = (arr < 0) | (arr >= self.n_users_)
        if outside.any():
            if not allow_unknown:
                raise ValueError(f"users holds codes outside 0..{self.n_users_ - 1} (first {arr[outside][0]}); "
                                 f"recommend for new users with history=")
            arr = np.where(outside, -1, arr)
        return arr

    def _history(self, codes: np.ndarray, users: Any, history: Any, ids: bool) -> HistoryChunk:
        """Each requested user's interactions: the stored ones, or the given history."""
        if history is None:
            return HistoryChunk(codes, self._clean_rows(take_rows(self.user_items_, codes)),
                                stored=self._stored_sequences, from_caller=False)
        if hasattr(history, "to_csr") and hasattr(history, "user_ids"):
            return self._history_of_interactions(codes, users, history, ids)
        if isinstance(history, (list, tuple)):
            return self._history_of_sequences(codes, history, ids)
        rows, _, _ = as_user_items(history, "history", keep_zeros=self.predicts_ratings)
        if rows.shape != (codes.size, self.n_items_):
            raise ValueError(f"history must have one row per user and one column per item: shape "
                             f"({codes.size}, {self.n_items_}), got {rows.shape}")
        return HistoryChunk(codes, self._clean_rows(rows))

    def _history_of_interactions(self, codes, users, history, ids) -> HistoryChunk:
        """An Interactions history, matched to the requested users and the model's items by id
        (items the model never saw are dropped); sequences follow its timestamps."""
        if not ids and (codes < 0).any():
            raise ValueError("history as Interactions matches users by original id: pass ids=True for new users")
        wanted = np.asarray(users).reshape(-1) if ids else self.user_ids_[np.maximum(codes, 0)]
        hrows = history.user_ids.codes(wanted, missing=-1)
        icodes = self.item_ids_.codes(history.item_ids.to_numpy(), missing=-1).astype(np.int64)
        H = history.to_csr().tocoo()
        keep = icodes[H.col] >= 0
        H = sp.csr_matrix((H.data[keep], (H.row[keep], icodes[H.col[keep]])),
                          shape=(H.shape[0], self.n_items_), dtype=np.float32)
        empty = sp.csr_matrix((1, self.n_items_), dtype=np.float32)
        rows = sp.vstack([H, empty]).tocsr()[np.where(hrows >= 0, hrows, H.shape[0])]
        by_user = history.to_sequences()
        none = np.empty(0, np.int64)
        sequences = []
        for h in hrows:
            seq = icodes[by_user[h]] if h >= 0 else none
            sequences.append(seq[seq >= 0])
        return HistoryChunk(codes, self._clean_rows(rows), sequences)

    def _history_of_sequences(self, codes, history, ids) -> HistoryChunk:
        """A list of item sequences (oldest first), one per requested user."""
        if len(history) != codes.size:
            raise ValueError(f"history must hold one item sequence per user ({codes.size}), got {len(history)}")
        sequences = []
        for k, seq in enumerate(history):
            arr = np.asarray(seq).reshape(-1)
            if ids:
                arr = self.item_ids_.codes(arr, missing=-1).astype(np.int64)
                arr = arr[arr >= 0]
            else:
                if arr.size and arr.dtype.kind not in "iu":
                    raise TypeError(f"history[{k}] must hold integer item codes (or pass ids=True), got {arr.dtype}")
                arr = arr.astype(np.int64)
                if arr.size and (arr.min() < 0 or arr.max() >= self.n_items_):
                    raise ValueError(f"history[{k}] holds item codes outside 0..{self.n_items_ - 1}")
            sequences.append(arr)
        lengths = np.array([s.size for s in sequences], dtype=np.int64)
        indptr = np.r_[0, np.cumsum(lengths)]
        cols = np.concatenate(sequences) if sequences else np.empty(0, np.int64)
        rows = sp.csr_matrix((np.ones(cols.size, np.float32), cols, indptr), shape=(codes.size, self.n_items_))
        return HistoryChunk(codes, self._clean_rows(rows), sequences)

    def _clean_rows(self, rows: sp.spmatrix) -> sp.csr_matrix:
        """Canonical float32 rows; a stored 0 stays only for rating models (a rating of 0)."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        rows.sum_duplicates()
        if not self.predicts_ratings:
            rows.eliminate_zeros()
        return rows

    def _stored_sequences(self, codes: np.ndarray) -> list[np.ndarray] | None:
        """The training sequences (oldest first) of known users, or None when the model has no
        order for them (then a history's sequences follow item code order). Models that require
        "sequences" keep them (``sequence_indptr_`` / ``sequence_items_``, saved with the model)."""
        indptr = getattr(self, "sequence_indptr_", None)
        if indptr is not None:
            items = self.sequence_items_
            none = np.empty(0, np.int64)
            return [items[indptr[c]:indptr[c + 1]].astype(np.int64) if c >= 0 else none for c in codes]
        td = getattr(self, "_training", None)
        if td is None or not td.has("sequences"):
            return None
        stored = td.sequences
        none = np.empty(0, np.int64)
        return [stored[c] if c >= 0 else none for c in codes]

    def _filter_pattern(self, filter_items: Any, ids: bool) -> np.ndarray | None:
        if filter_items is None:
            return None
        arr = np.asarray(filter_items).reshape(-1)
        if ids:
            return np.unique(known_codes(self.item_ids_, arr, "filter_items"))
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"filter_items must be integer item codes (or pass ids=True), got dtype {arr.dtype}")
        check_code_range(arr, self.n_items_, "filter_items")
        return np.unique(arr.astype(np.int64))

    def _exclusion(self, rows: sp.csr_matrix, blocked: np.ndarray | None, exclude_seen: bool) -> sp.csr_matrix | None:
        """Per row, the items it must not get (seen items, filtered items), as a pattern CSR."""
        m = rows.shape[0]
        parts = []
        if exclude_seen:
            parts.append(pattern(rows))
        if blocked is not None and blocked.size:
            indptr = np.arange(m + 1, dtype=np.int64) * blocked.size
            parts.append(sp.csr_matrix((np.ones(m * blocked.size, np.float32), np.tile(blocked, m), indptr),
                                       shape=rows.shape))
        if not parts:
            return None
        E = parts[0] if len(parts) == 1 else pattern(parts[0] + parts[1])
        E.sort_indices()
        return E

    def _item_ids_of(self, items: np.ndarray) -> np.ndarray:
        return ids_of_codes(self.item_ids_, items)

    # ------------------------------------------------------------------ predict
    def predict(self, users: Any, items: Any, *, ids: bool = False) -> np.ndarray:
        """One score (or rating, for explicit-feedback models) per (users[k], items[k]) pair."""
        self._require_fitted()
        u = np.asarray(users).reshape(-1)
        i = np.asarray(items).reshape(-1)
        if u.shape != i.shape:
            raise ValueError(f"users and items must have the same length, got {u.size} and {i.size}")
        if ids:
            u = known_codes(self.user_ids_, u, "users")
            i = known_codes(self.item_ids_, i, "items")
        for arr, name, limit in ((u, "users", self.n_users_), (i, "items", self.n_items_)):
            if arr.size and arr.dtype.kind not in "iu":
                raise TypeError(f"{name} must be integer codes (or pass ids=True), got dtype {arr.dtype}")
            check_code_range(arr, limit, name)
        return self._predict_codes(u.astype(np.int64), i.astype(np.int64))

    def _predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ neighbours
    def similar_items(self, items: Any, n: int = 10, *, ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The n items most similar to each given item (never itself): ``(items, scores)``."""
        raise NotImplementedError(f"{type(self).__name__} has no notion of item similarity")

    def similar_users(self, users: Any, n: int = 10, *, ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The n users most similar to each given user (never itself): ``(users, scores)``."""
        raise NotImplementedError(f"{type(self).__name__} has no notion of user similarity")

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> None:
        """Write the model to the folder ``path`` (model.json + arrays.npz; no pickle)."""
        from recforge.models.artifacts import save_model
        save_model(self, path)

    def _state(self) -> dict[str, Any]:
        """Learned state beyond the training matrix and ids: arrays, CSR matrices, numbers."""
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def ids_of_codes(idmap: IdMap, codes: np.ndarray) -> np.ndarray:
    """Original ids of codes; padding (-1) becomes None for object ids and -1 otherwise."""
    id_array = idmap.to_numpy()
    out = id_array[np.maximum(codes, 0)]
    if id_array.dtype.kind == "O":
        out = out.astype(object)
        out[codes < 0] = None
    else:
        out = np.where(codes < 0, -1, out)
    return out


def take_rows(R: sp.csr_matrix, codes: np.ndarray) -> sp.csr_matrix:
    """``R[codes]`` (codes within range); one row is sliced directly, skipping scipy's fancy
    indexing (most of a single-user ``recommend``'s time on a small model)."""
    if codes.size != 1:
        return R[codes]
    c = int(codes[0])
    lo, hi = int(R.indptr[c]), int(R.indptr[c + 1])
    indptr = np.array([0, hi - lo], dtype=R.indptr.dtype)
    return sp.csr_matrix((R.data[lo:hi].copy(), R.indices[lo:hi].copy(), indptr), shape=(1, R.shape[1]))


def _flat_sequences(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, items) of per-user sequences: user u's items are items[indptr[u]:indptr[u + 1]]."""
    lengths = np.fromiter((s.size for s in sequences), dtype=np.int64, count=len(sequences))
    indptr = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = np.concatenate(sequences).astype(np.int32) if sequences else np.empty(0, np.int32)
    return indptr, items


def known_codes(idmap: IdMap, ids: Any, name: str, missing: str | int = "raise") -> np.ndarray:
    """int64 codes of original ids; an unknown id raises KeyError naming the argument and the id."""
    try:
        return idmap.codes(ids, missing=missing).astype(np.int64)
    except KeyError as exc:
        raise KeyError(f"{name}: {exc.args[0]} (not in the training data)") from None


def check_code_range(codes: np.ndarray, limit: int, name: str) -> None:
    """Raise ValueError naming the argument, the valid range and the first code outside it."""
    if codes.size:
        outside = (codes < 0) | (codes >= limit)
        if outside.any():
            raise ValueError(f"{name} holds codes outside 0..{limit - 1} (first {codes[outside][0]}); "
                             f"pass ids=True for original ids")
