"""IdMap: the two-way mapping between original ids (ints or strings) and codes 0..n-1."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np


class IdMap:
    """Original ids in code order: ``idmap[code] -> id`` and ``idmap.codes(ids) -> codes``.

    ``ids`` is a 1-D array of distinct ids (int64 or object array of str); the code of an id is its
    position. Lookups by id use a sorted view built on first use (vectorised binary search).
    """

    __slots__ = ("_ids", "_sorter", "_sorted")

    def __init__(self, ids: Any):
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {arr.shape}")
        if arr.dtype.kind == "U":
            arr = arr.astype(object)
        if arr.dtype.kind not in "iuO":
            raise TypeError(f"ids must be integers or strings, got dtype {arr.dtype}")
        arr = arr.copy() if arr.flags.writeable else arr
        arr.flags.writeable = False
        self._ids = arr
        self._sorter: np.ndarray | None = None
        self._sorted: np.ndarray | None = None

    @classmethod
    def range(cls, n: int) -> "IdMap":
        """The identity map 0..n-1 (ids equal codes)."""
        return cls(np.arange(n, dtype=np.int64))

    def __len__(self) -> int:
        return self._ids.size

    def __getitem__(self, codes: Any) -> Any:
        """Original id(s) of code(s)."""
        return self._ids[codes]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._ids.tolist())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._ids if dtype is None else self._ids.astype(dtype)

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids, dtype={self._ids.dtype})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return self is other or (len(self) == len(other) and self._ids.dtype.kind == other._ids.dtype.kind
                                 and bool(np.all(self._ids == other._ids)))

    __hash__ = None  # type: ignore[assignment]

    def to_numpy(self) -> np.ndarray:
        """The ids in code order (read-only)."""
        return self._ids

    def _lookup_tables(self) -> tuple[np.ndarray, np.ndarray]:
        if self._sorter is None:
            sorter = np.argsort(self._ids, kind="stable")
            self._sorted = self._ids[sorter]
            self._sorter = sorter.astype(np.int32)
            if self._sorted.size > 1 and np.any(self._sorted[1:] == self._sorted[:-1]):
                raise ValueError("ids must be distinct")
        return self._sorter, self._sorted  # type: ignore[return-value]

    def codes(self, ids: Any, missing: str | int = "raise") -> np.ndarray:
        """int32 codes of ``ids``; an unknown id raises KeyError, or gets ``missing`` when it is an int."""
        query = np.asarray(ids)
        scalar = query.ndim == 0
        query = query.reshape(-1)
        if query.dtype.kind == "U":
            query = query.astype(object)
        sorter, sorted_ids = self._lookup_tables()
        out = np.full(query.size, -1, dtype=np.int32)
        if query.size and sorted_ids.size:
            same_kind = (query.dtype.kind in "iu") == (sorted_ids.dtype.kind in "iu")
            if query.dtype.kind == "O" and sorted_ids.dtype.kind == "O":
                same_kind = True
            if same_kind:
                try:
                    pos = np.searchsorted(sorted_ids, query)
                except TypeError:
                    pos = None
                if pos is not None:
                    pos = np.minimum(pos, sorted_ids.size - 1)
                    hit = sorted_ids[pos] == query
                    hit = np.asarray(hit, dtype=bool)
                    out[hit] = sorter[pos[hit]]
        if missing == "raise":
            bad = out < 0
            if bad.any():
                raise KeyError(f"{int(bad.sum())} unknown id(s), first {query[bad][0]!r}")
        else:
            out[out < 0] = int(missing)
        return out[0] if scalar else out

    def code(self, id_: Any) -> int:
        """The code of one id (KeyError when unknown)."""
        return int(self.codes(np.asarray([id_]))[0])

    def __contains__(self, id_: Any) -> bool:
        return bool(self.codes(np.asarray([id_]), missing=-1)[0] >= 0)
