"""TrainingData: everything a model may learn from, computed on first use.

``Recommender.fit`` wraps its input in one :class:`TrainingData` and hands that to ``_fit``, so
every family sees the same object: the users x items matrix (what KNN and factor models read),
ordered per-user sequences (sequence models), timestamps and values (recency-weighted
profiles), the item metadata table (content models) and the id maps. Each part is built lazily
and cached, so a model pays only for what it reads.

A model states what it needs in ``requires``; :meth:`TrainingData.check` refuses an input that
lacks it (a bare CSR given to a content model) with :class:`MissingInputError` naming the part.

:class:`HistoryChunk` is the request-time counterpart: the users of one ``recommend`` chunk as
matrix rows and, for models that need order, as sequences (oldest first).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.data.idmap import IdMap
from recforge.kernels import _validation as v

#: what a model may declare in ``requires``
REQUIREMENTS = ("sequences", "timestamps", "values", "item_metadata")


class MissingInputError(ValueError):
    """The training data lacks a part the model requires (e.g. item metadata, event order)."""


def _as_matrix(X: Any, name: str, keep_zeros: bool) -> sp.csr_matrix:
    """A canonical float32 CSR of a scipy matrix; stored zeros are kept when ``keep_zeros``."""
    if not keep_zeros:
        return v.with_value_dtype(v.as_csr(X, name), np.dtype(np.float32))
    if not (sp.issparse(X) and X.ndim == 2):
        return v.as_csr(X, name)  # raises the kernels' TypeError naming the argument
    M = sp.csr_matrix(X, dtype=np.float32, copy=True)
    if M.nnz and not np.all(np.isfinite(M.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    M.sum_duplicates()
    return M


class TrainingData:
    """The training input of one ``fit`` (see the module docstring).

    Build with :meth:`of`. ``duplicates`` says how repeated (user, item) events combine in
    :attr:`matrix` ("sum": counts; "last": the latest rating). ``keep_zeros``: a stored value 0 is
    an interaction (explicit ratings on a scale that contains 0) rather than a missing one.
    """

    def __init__(self, *, matrix: sp.csr_matrix | None = None, interactions: Any = None,
                 user_ids: IdMap, item_ids: IdMap, duplicates: str = "sum", keep_zeros: bool = False):
        self.interactions = interactions
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.n_users, self.n_items = len(user_ids), len(item_ids)
        self.duplicates = duplicates
        self.keep_zeros = keep_zeros
        self._matrix = matrix
        self._sequences: list[np.ndarray] | None = None
        self._sequence_times: list[np.ndarray] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def of(cls, data: Any, duplicates: str = "sum", keep_zeros: bool = False, name: str = "data") -> "TrainingData":
        """Wrap an :class:`~recforge.data.Interactions`, a users x items scipy sparse matrix (ids =
        codes; duplicate entries summed) or an existing TrainingData (re-keyed if ``duplicates`` or
        ``keep_zeros`` differ)."""
        if isinstance(data, TrainingData):
            if data.interactions is not None and (data.duplicates, data.keep_zeros) != (duplicates, keep_zeros):
                return cls.of(data.interactions, duplicates, keep_zeros, name)
            return data
        if hasattr(data, "to_csr") and hasattr(data, "user_ids"):
            return cls(interactions=data, user_ids=data.user_ids, item_ids=data.item_ids,
                       duplicates=duplicates, keep_zeros=keep_zeros)
        if sp.issparse(data) and data.ndim == 2:
            R = _as_matrix(data, name, keep_zeros)
            return cls(matrix=R, user_ids=IdMap.range(R.shape[0]), item_ids=IdMap.range(R.shape[1]),
                       duplicates=duplicates, keep_zeros=keep_zeros)
        raise TypeError(f"{name} must be recforge.data.Interactions or a 2-D scipy.sparse users x items "
                        f"matrix, got {type(data).__name__}")

    # ------------------------------------------------------------------ the parts
    @property
    def matrix(self) -> sp.csr_matrix:
        """Users x items, canonical float32 CSR: the values (else 1), repeated pairs combined."""
        if self._matrix is None:
            R = self.interactions.to_csr(duplicates=self.duplicates)
            self._matrix = _as_matrix(R, "data", self.keep_zeros)
        return self._matrix

    @property
    def values(self) -> np.ndarray | None:
        """Per-event values (ratings or weights), or None."""
        return None if self.interactions is None else self.interactions.values

    @property
    def timestamps(self) -> np.ndarray | None:
        """Per-event int64 timestamps, or None."""
        return None if self.interactions is None else self.interactions.timestamps

    @property
    def item_metadata(self) -> Any:
        """pandas DataFrame with one row per item code (index: item id), or None."""
        return None if self.interactions is None else getattr(self.interactions, "item_metadata", None)

    @property
    def sequences(self) -> list[np.ndarray]:
        """Each user's item codes, oldest first (timestamp, then event order), as int64 arrays.

        Needs an Interactions: a bare matrix has no order (MissingInputError)."""
        if self._sequences is None:
            self.check({"sequences"}, "sequences")
            inter = self.interactions
            order = inter._user_time_order()
            indptr = np.zeros(inter.n_users + 1, dtype=np.int64)
            np.cumsum(inter.user_counts(), out=indptr[1:])
            self._sequences = np.split(inter.items[order].astype(np.int64), indptr[1:-1])
            if inter.timestamps is not None:
                self._sequence_times = np.split(inter.timestamps[order], indptr[1:-1])
        return self._sequences

    @property
    def sequence_timestamps(self) -> list[np.ndarray] | None:
        """Timestamps aligned with :attr:`sequences`, or None without timestamps."""
        if self.timestamps is None:
            return None
        self.sequences
        return self._sequence_times

    def item_texts(self, fields: Sequence[str] = ("title", "genres", "tags"), sep: str = " ") -> list[str]:
        """One text per item code: the given metadata columns joined by ``sep`` (columns that are
        absent are skipped; lists are joined, "|"-separated genres become words; missing -> "")."""
        meta = self.item_metadata
        if meta is None:
            raise MissingInputError("item metadata is required (Interactions.item_metadata); "
                                    "the training data has none")
        present = [f for f in fields if f in meta.columns]
        if not present:
            raise MissingInputError(f"item metadata has none of the fields {list(fields)}; "
                                    f"it has {list(meta.columns)}")
        columns = [meta[f].tolist() for f in present]
        return [sep.join(t for t in (_text_of(cell) for cell in cells) if t) for cells in zip(*columns)]

    # ------------------------------------------------------------------ requirements
    def has(self, requirement: str) -> bool:
        """Whether this input can provide ``requirement`` (one of :data:`REQUIREMENTS`)."""
        if requirement not in REQUIREMENTS:
            raise ValueError(f"unknown requirement {requirement!r}; known: {REQUIREMENTS}")
        inter = self.interactions
        if requirement == "sequences":
            return inter is not None
        if requirement == "timestamps":
            return inter is not None and inter.timestamps is not None
        if requirement == "values":
            return inter is not None and inter.values is not None or (inter is None and self._matrix is not None)
        return self.item_metadata is not None

    def check(self, requirements: Iterable[str], model: str) -> None:
        """Raise MissingInputError naming every requirement this input cannot provide."""
        missing = [r for r in sorted(requirements) if not self.has(r)]
        if missing:
            hints = {"sequences": "event order (pass recforge.data.Interactions, not a bare matrix)",
                     "timestamps": "timestamps (Interactions with a timestamp column)",
                     "values": "values (ratings or weights)",
                     "item_metadata": "item metadata (Interactions.item_metadata, e.g. from recforge.datasets)"}
            raise MissingInputError(f"{model} requires {', '.join(hints[m] for m in missing)}; "
                                    f"the training data has no {', '.join(missing)}")


def _text_of(cell: Any) -> str:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return ""
    if isinstance(cell, (list, tuple, np.ndarray)):
        return " ".join(str(x) for x in cell)
    return str(cell).replace("|", " ")


class HistoryChunk:
    """The users of one recommend chunk: matrix rows, and sequences (oldest first) on demand.

    ``sequences`` are the caller's ordered history when one was given; else the model's stored
    training sequences (``stored(codes)``, for models fitted on Interactions); else, for a
    matrix, the items of each row in code order (a matrix carries no order)."""

    def __init__(self, codes: np.ndarray, rows: sp.csr_matrix, sequences: list[np.ndarray] | None = None,
                 stored: Callable[[np.ndarray], list[np.ndarray] | None] | None = None,
                 from_caller: bool | None = None):
        self.codes = codes
        #: True when the caller passed history= (the stored interactions are not to be used)
        self.from_caller = stored is None if from_caller is None else from_caller
        self.rows = rows
        self._sequences = sequences
        self._stored = stored

    def __len__(self) -> int:
        return self.codes.size

    @property
    def sequences(self) -> list[np.ndarray]:
        if self._sequences is None:
            found = self._stored(self.codes) if self._stored is not None else None
            if found is None:
                R = self.rows
                found = [R.indices[R.indptr[k]:R.indptr[k + 1]].astype(np.int64) for k in range(R.shape[0])]
            self._sequences = found
        return self._sequences

    def part(self, sl: slice) -> "HistoryChunk":
        if sl.step is None and (sl.start or 0) == 0 and (sl.stop is None or sl.stop >= len(self)):
            return self                                   # the whole chunk (e.g. one user): no copies
        seqs = None if self._sequences is None else self._sequences[sl]
        return HistoryChunk(self.codes[sl], self.rows[sl], seqs, self._stored, self.from_caller)
