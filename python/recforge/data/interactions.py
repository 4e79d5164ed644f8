"""Interactions: the user-item event table every model, split and metric consumes.

An ``Interactions`` holds one row per event as numpy columns:

* ``users``, ``items``: contiguous int32 codes (0..n_users-1, 0..n_items-1);
* ``values``: optional float32 ratings or weights;
* ``timestamps``: optional int64 times (seconds, or positions for sequence files);
* ``user_ids``, ``item_ids``: :class:`IdMap` s from codes to the original ids (ints or strings)
  and back (``inter.user_ids[code]``, ``inter.user_ids.codes(ids)``);
* ``item_metadata``: optional pandas DataFrame with one row per item code (index: item id).

Build one with ``from_pandas``, ``from_polars``, ``from_arrow``, ``read_csv``, ``read_parquet``
(the caller names the columns), ``from_arrays`` or ``from_csr``. Row subsets (``select``,
``subset``, every split) keep the same id vocabulary, so ``train.to_csr()`` and
``test.to_csr()`` have the same shape and code ``u`` means the same user in both.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.data.columns import as_timestamps, as_values, encode_ids
from recforge.data.idmap import IdMap

DUPLICATE_POLICIES = ("sum", "last", "max")


class Interactions:
    """User-item events with contiguous codes (see the module docstring)."""

    def __init__(self, users: Any, items: Any, values: Any = None, timestamps: Any = None, *,
                 user_ids: IdMap | Any = None, item_ids: IdMap | Any = None,
                 item_metadata: Any = None):
        users = _as_codes(users, "users")
        items = _as_codes(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must have the same length, got {users.size} and {items.size}")
        self.user_ids = _as_idmap(user_ids, users, "user_ids", "users")
        self.item_ids = _as_idmap(item_ids, items, "item_ids", "items")
        _check_range(users, len(self.user_ids), "users")
        _check_range(items, len(self.item_ids), "items")
        self.users, self.items = users, items
        self.values = None if values is None else _column(as_values(values, "values"), users.size, "values")
        self.timestamps = (None if timestamps is None
                           else _column(as_timestamps(timestamps, "timestamps"), users.size, "timestamps"))
        if item_metadata is not None and len(item_metadata) != len(self.item_ids):
            raise ValueError(f"item_metadata must have one row per item code ({len(self.item_ids)}), "
                             f"got {len(item_metadata)}")
        self.item_metadata = item_metadata

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_arrays(cls, users: Any, items: Any, values: Any = None, timestamps: Any = None, *,
                    user_ids: IdMap | None = None, item_ids: IdMap | None = None,
                    item_metadata: Any = None, unknown: str = "raise",
                    column_names: Sequence[str | None] = ("user", "item", "value", "timestamp")
                    ) -> "Interactions":
        """From columns of original ids (numpy, lists, pandas/polars series or arrow arrays).

        ``user_ids``/``item_ids`` fix the vocabulary (e.g. a training set's); ids outside it raise
        a KeyError, or with ``unknown="drop"`` their rows are dropped. ``column_names`` are the
        names that error messages use for the four columns.
        """
        user_col, item_col, value_col, time_col = column_names
        if unknown not in ("raise", "drop"):
            raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}")
        mode = "mark" if unknown == "drop" else "raise"
        ucodes, umap = encode_ids(users, user_col, user_ids, mode)
        icodes, imap = encode_ids(items, item_col, item_ids, mode)
        if ucodes.size != icodes.size:
            raise ValueError(f"users and items must have the same length, got {ucodes.size} and {icodes.size}")
        vals = None if values is None else as_values(values, value_col)
        times = None if timestamps is None else as_timestamps(timestamps, time_col)
        for arr, name in ((vals, "values"), (times, "timestamps")):
            if arr is not None and arr.size != ucodes.size:
                raise ValueError(f"{name} must have one entry per row ({ucodes.size}), got {arr.size}")
        return cls._from_codes(ucodes, umap, icodes, imap, vals, times, drop_unknown=mode == "mark",
                               item_metadata=item_metadata)

    @classmethod
    def _from_codes(cls, ucodes: np.ndarray, umap: IdMap, icodes: np.ndarray, imap: IdMap,
                    vals: np.ndarray | None, times: np.ndarray | None, *, drop_unknown: bool,
                    item_metadata: Any) -> "Interactions":
        """Assemble encoded columns; rows with code -1 (unknown ids) are dropped when asked."""
        if drop_unknown:
            keep = (ucodes >= 0) & (icodes >= 0)
            if not keep.all():
                ucodes, icodes = ucodes[keep], icodes[keep]
                vals = None if vals is None else vals[keep]
                times = None if times is None else times[keep]
        metadata = None if item_metadata is None else align_metadata(item_metadata, imap)
        return cls._trusted(ucodes, icodes, vals, times, umap, imap, metadata)

    @classmethod
    def from_csr(cls, matrix: Any, *, user_ids: Any = None, item_ids: Any = None,
                 values: bool = True, item_metadata: Any = None) -> "Interactions":
        """One row per stored entry of a users x items sparse matrix (``values=False``: no values)."""
        if not sp.issparse(matrix) or matrix.ndim != 2:
            raise TypeError(f"matrix must be a 2-D scipy.sparse matrix, got {type(matrix).__name__}")
        coo = matrix.tocsr()
        if not coo.has_canonical_format:
            coo = coo.copy()
            coo.sum_duplicates()
        n_users, n_items = coo.shape
        users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(coo.indptr))
        items = coo.indices.astype(np.int32, copy=True)
        vals = as_values(coo.data, "values") if values else None
        umap = IdMap.range(n_users) if user_ids is None else _as_idmap(user_ids, users, "user_ids", "users")
        imap = IdMap.range(n_items) if item_ids is None else _as_idmap(item_ids, items, "item_ids", "items")
        if len(umap) != n_users or len(imap) != n_items:
            raise ValueError(f"user_ids/item_ids must have {n_users}/{n_items} entries, got {len(umap)}/{len(imap)}")
        return cls(users, items, vals, user_ids=umap, item_ids=imap, item_metadata=item_metadata)

    @classmethod
    def from_pandas(cls, df: Any, user: str = "user", item: str = "item", value: str | None = None,
                    timestamp: str | None = None, **kwargs: Any) -> "Interactions":
        """From a pandas DataFrame; see :func:`recforge.data.readers.from_pandas`."""
        from recforge.data.readers import from_pandas
        return from_pandas(df, user, item, value, timestamp, **kwargs)

    @classmethod
    def from_polars(cls, df: Any, user: str = "user", item: str = "item", value: str | None = None,
                    timestamp: str | None = None, **kwargs: Any) -> "Interactions":
        """From a polars DataFrame; see :func:`recforge.data.readers.from_polars`."""
        from recforge.data.readers import from_polars
        return from_polars(df, user, item, value, timestamp, **kwargs)

    @classmethod
    def from_arrow(cls, table: Any, user: str = "user", item: str = "item", value: str | None = None,
                   timestamp: str | None = None, **kwargs: Any) -> "Interactions":
        """From a pyarrow Table; see :func:`recforge.data.readers.from_arrow`."""
        from recforge.data.readers import from_arrow
        return from_arrow(table, user, item, value, timestamp, **kwargs)

    @classmethod
    def read_csv(cls, path: Any, user: str = "user", item: str = "item", value: str | None = None,
                 timestamp: str | None = None, **kwargs: Any) -> Any:
        """Read a delimited text file; see :func:`recforge.data.readers.read_csv`."""
        from recforge.data.readers import read_csv
        return read_csv(path, user, item, value, timestamp, **kwargs)

    @classmethod
    def read_parquet(cls, path: Any, user: str = "user", item: str = "item", value: str | None = None,
                     timestamp: str | None = None, **kwargs: Any) -> "Interactions":
        """Read a Parquet file; see :func:`recforge.data.readers.read_parquet`."""
        from recforge.data.readers import read_parquet
        return read_parquet(path, user, item, value, timestamp, **kwargs)

    @classmethod
    def from_sql(cls, url: str, query: str, **kwargs: Any) -> "Interactions":
        """The rows of a SQL query; see :func:`recforge.data.sql.read_sql` (needs SQLAlchemy)."""
        from recforge.data.sql import read_sql
        return read_sql(url, query, **kwargs)

    @classmethod
    def _trusted(cls, users: np.ndarray, items: np.ndarray, values: np.ndarray | None,
                 timestamps: np.ndarray | None, user_ids: IdMap, item_ids: IdMap,
                 item_metadata: Any = None) -> "Interactions":
        """Assemble from arrays that already follow every rule (internal; no checks, no copies)."""
        self = cls.__new__(cls)
        self.users, self.items, self.values, self.timestamps = users, items, values, timestamps
        self.user_ids, self.item_ids, self.item_metadata = user_ids, item_ids, item_metadata
        return self

    # ----------------------------------------------------------------- basic facts
    def __len__(self) -> int:
        return int(self.users.size)

    @property
    def n_users(self) -> int:
        """Size of the user vocabulary (users without rows in this subset included)."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Size of the item vocabulary (items without rows in this subset included)."""
        return len(self.item_ids)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __repr__(self) -> str:
        extras = [name for name, col in (("values", self.values), ("timestamps", self.timestamps)) if col is not None]
        if self.item_metadata is not None:
            extras.append("item_metadata")
        more = f", with {', '.join(extras)}" if extras else ""
        return f"Interactions({len(self)} rows, {self.n_users} users x {self.n_items} items{more})"

    def user_counts(self) -> np.ndarray:
        """Rows per user code (length n_users)."""
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Rows per item code (length n_items)."""
        return np.bincount(self.items, minlength=self.n_items)

    # ----------------------------------------------------------------- conversions
    def to_csr(self, values: bool | str | np.ndarray | None = None, shape: tuple[int, int] | None = None,
               duplicates: str = "sum", dtype: Any = np.float32) -> sp.csr_matrix:
        """The users x items CSR matrix (canonical: sorted indices, one entry per pair).

        ``values``: None uses the stored values when present, else 1; False (or "ones") puts 1
        everywhere; an array gives one value per row. ``shape`` may enlarge the matrix (e.g. a
        larger vocabulary). Repeated (user, item) pairs are combined by ``duplicates``: "sum",
        "last" (latest timestamp, then later row) or "max". Explicit zeros are kept.
        """
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
        data = self._value_column(values)
        if not np.all(np.isfinite(data)):
            raise ValueError("values contain NaN or infinite entries; drop them with recforge.data.clean")
        n_users, n_items = self.shape if shape is None else _check_shape(shape, self.shape)
        if duplicates == "sum":
            matrix = sp.csr_matrix((data.astype(dtype, copy=False), (self.users, self.items)),
                                   shape=(n_users, n_items))
            matrix.sum_duplicates()
            return matrix
        order = self._pair_order(by_time=duplicates == "last")
        keys = self.users[order].astype(np.int64) * n_items + self.items[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.empty(0, np.int64)
        if duplicates == "last":
            ends = np.r_[starts[1:], keys.size] - 1
            picked = data[order[ends]]
        else:
            picked = np.maximum.reduceat(data[order], starts) if keys.size else data[:0]
        unique = keys[starts]
        rows, cols = unique // n_items, unique % n_items
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        index_dtype = np.int32 if max(n_users, n_items, unique.size) < np.iinfo(np.int32).max else np.int64
        return sp.csr_matrix((picked.astype(dtype, copy=False), cols.astype(index_dtype),
                              indptr.astype(index_dtype)), shape=(n_users, n_items))

    def to_sequences(self, flat: bool = False) -> list[np.ndarray] | tuple[np.ndarray, np.ndarray]:
        """Each user's item codes in chronological order (timestamp, then row order).

        Returns a list of n_users int32 arrays (empty for users without rows), or with
        ``flat=True`` the pair ``(indptr, items)`` where user u's items are
        ``items[indptr[u]:indptr[u + 1]]``.
        """
        order = self._user_time_order()
        items = self.items[order]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(self.user_counts(), out=indptr[1:])
        if flat:
            return indptr, items
        return np.split(items, indptr[1:-1])

    def to_pandas(self, ids: bool = True) -> Any:
        """A DataFrame with columns user, item[, value][, timestamp] (original ids, or codes)."""
        from recforge.data._deps import require
        pd = require("pandas", purpose="Interactions.to_pandas")
        cols = {"user": self.user_ids[self.users] if ids else self.users,
                "item": self.item_ids[self.items] if ids else self.items}
        if self.values is not None:
            cols["value"] = self.values
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)

    # ----------------------------------------------------------------- row subsets
    def select(self, rows: Any) -> "Interactions":
        """The rows given by a boolean mask or an index array, with the same vocabularies."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != self.users.shape:
                raise ValueError(f"mask must have length {len(self)}, got {rows.shape}")
        elif rows.dtype.kind not in "iu":
            raise TypeError(f"rows must be a boolean mask or integer indices, got {rows.dtype}")
        return Interactions._trusted(
            self.users[rows], self.items[rows],
            None if self.values is None else self.values[rows],
            None if self.timestamps is None else self.timestamps[rows],
            self.user_ids, self.item_ids, self.item_metadata)

    def subset(self, users: Any = None, items: Any = None, *, codes: bool = False) -> "Interactions":
        """Rows whose user is in ``users`` and item is in ``items`` (None: no restriction).

        Both are original ids unless ``codes=True``. Unknown ids raise KeyError. The vocabularies
        stay the same (use :meth:`compact` to drop ids without rows).
        """
        keep = np.ones(len(self), dtype=bool)
        for wanted, col, idmap, name in ((users, self.users, self.user_ids, "users"),
                                         (items, self.items, self.item_ids, "items")):
            if wanted is None:
                continue
            wanted = np.asarray(wanted).reshape(-1)
            wanted_codes = (_check_range(_as_codes(wanted, name), len(idmap), name) if codes
                            else idmap.codes(wanted))
            member = np.zeros(len(idmap), dtype=bool)
            member[wanted_codes] = True
            keep &= member[col]
        return self.select(keep)

    def with_values(self, values: Any) -> "Interactions":
        """The same rows with other values (one per row; None removes them)."""
        vals = None if values is None else _column(as_values(values, "values"), len(self), "values")
        return Interactions._trusted(self.users, self.items, vals, self.timestamps,
                                     self.user_ids, self.item_ids, self.item_metadata)

    def compact(self) -> "Interactions":
        """Drop users and items without rows and renumber codes (order of ids is kept)."""
        ukeep = self.user_counts() > 0
        ikeep = self.item_counts() > 0
        if ukeep.all() and ikeep.all():
            return self
        unew = np.cumsum(ukeep, dtype=np.int32) - 1
        inew = np.cumsum(ikeep, dtype=np.int32) - 1
        metadata = self.item_metadata
        if metadata is not None:
            metadata = metadata.iloc[np.flatnonzero(ikeep)]
        return Interactions._trusted(unew[self.users], inew[self.items], self.values, self.timestamps,
                                     IdMap(self.user_ids.to_numpy()[ukeep]),
                                     IdMap(self.item_ids.to_numpy()[ikeep]), metadata)

    # ----------------------------------------------------------------- internals
    def _value_column(self, values: Any) -> np.ndarray:
        if values is None or values is True:
            if self.values is not None:
                return self.values
            if values is True:
                raise ValueError("values=True but these interactions have no values")
            return np.ones(len(self), dtype=np.float32)
        if values is False or (isinstance(values, str) and values == "ones"):
            return np.ones(len(self), dtype=np.float32)
        if isinstance(values, str):
            raise ValueError(f"values must be None, True, False, 'ones' or an array, got {values!r}")
        return _column(as_values(values, "values"), len(self), "values")

    def _pair_order(self, by_time: bool) -> np.ndarray:
        """Row order sorted by (user, item[, timestamp], row): stable, so ties keep row order."""
        keys = [self.items, self.users]
        if by_time and self.timestamps is not None:
            keys.insert(0, self.timestamps)
        return np.lexsort(keys)

    def _user_time_order(self) -> np.ndarray:
        """Row order sorted by (user, timestamp, row)."""
        if self.timestamps is None:
            return np.argsort(self.users, kind="stable")
        return np.lexsort((self.timestamps, self.users))


def align_metadata(metadata: Any, item_ids: IdMap) -> Any:
    """Item metadata (DataFrame indexed by item id) reindexed to one row per item code."""
    if not hasattr(metadata, "reindex"):
        raise TypeError(f"item_metadata must be a pandas DataFrame indexed by item id, got {type(metadata).__name__}")
    return metadata.reindex(item_ids.to_numpy())


def _as_codes(arr: Any, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer codes, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{name} codes must lie in [0, 2**31), got values from {arr.min()} to {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _check_range(codes: np.ndarray, n: int, name: str) -> np.ndarray:
    if codes.size and codes.max() >= n:
        raise ValueError(f"{name} has code {codes.max()} but the vocabulary has only {n} ids")
    return codes


def _as_idmap(ids: Any, codes: np.ndarray, arg: str, name: str) -> IdMap:
    if ids is None:
        return IdMap.range(int(codes.max()) + 1 if codes.size else 0)
    return ids if isinstance(ids, IdMap) else IdMap(ids)


def _column(arr: np.ndarray, n: int, name: str) -> np.ndarray:
    if arr.size != n:
        raise ValueError(f"{name} must have one entry per row ({n}), got {arr.size}")
    return arr


def _check_shape(shape: Sequence[int], minimum: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"shape must be (n_users, n_items), got {shape!r}")
    n_users, n_items = int(shape[0]), int(shape[1])
    if n_users < minimum[0] or n_items < minimum[1]:
        raise ValueError(f"shape {shape!r} is smaller than the vocabulary {minimum}")
    return n_users, n_items
