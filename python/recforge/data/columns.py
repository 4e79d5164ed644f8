"""Column conversion: original ids -> contiguous int32 codes, ratings -> float32, times -> int64.

Every conversion is vectorised (pyarrow compute when pyarrow is installed, numpy otherwise)
and checks its input once, naming the column in the error:

* ids must be integers or strings, one type per column, no missing values (any integer,
  negative included, is a valid id: ids are mapped to codes, never used as codes);
* values must be numeric (missing values become NaN, which :func:`recforge.data.clean` removes);
* timestamps must be integers, integral floats or datetimes (stored as int64 seconds), none missing.

Codes follow the sorted order of the ids, so the same set of ids always gives the same codes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge.data._deps import optional
from recforge.data.idmap import IdMap


def _pa():
    return optional("pyarrow")


def _is_arrow(col: Any) -> bool:
    pa = _pa()
    return pa is not None and isinstance(col, (pa.Array, pa.ChunkedArray))


def _as_chunked(col: Any, name: str):
    """A pyarrow ChunkedArray for ``col`` (zero-copy for numeric numpy/arrow input)."""
    pa = _pa()
    if isinstance(col, pa.ChunkedArray):
        return col
    if isinstance(col, pa.Array):
        return pa.chunked_array([col])
    if type(col).__module__.startswith("polars"):
        arrow = col.to_arrow()
        return arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow])
    # lists go to Arrow as they are: np.asarray would silently turn [1, "a"] into strings
    arr = col if isinstance(col, (list, tuple)) or hasattr(col, "dtype") else np.asarray(col)
    try:
        return pa.chunked_array([pa.array(arr, from_pandas=True)])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(f"column {name!r} mixes id types (e.g. numbers and strings): {exc}") from None


def _first_true(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numpy_column(col: Any, name: str) -> np.ndarray:
    """Any column as a 1-D numpy array (used when pyarrow is absent)."""
    if hasattr(col, "to_numpy"):
        col = col.to_numpy()
    arr = np.asarray(col)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r} must be 1-D, got shape {arr.shape}")
    return arr


def encode_ids(col: Any, name: str, vocabulary: IdMap | None = None,
               unknown: str = "raise") -> tuple[np.ndarray, IdMap]:
    """(int32 codes, IdMap) of an id column.

    Without ``vocabulary`` the codes index the sorted distinct ids. With it, ids are looked up
    in that vocabulary; ids not in it raise a KeyError (``unknown="raise"``) or get code -1
    (``unknown="mark"``).
    """
    if _pa() is not None:
        return _encode_arrow(_as_chunked(col, name), name, vocabulary, unknown)
    return _encode_numpy(_numpy_column(col, name), name, vocabulary, unknown)


def _check_id_type_arrow(arr, name: str):
    pa = _pa()
    import pyarrow.compute as pc
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_floating(t):
        n_nan = arr.null_count + pc.sum(pc.is_nan(arr)).as_py() if len(arr) else 0
        if n_nan:
            mask = np.asarray(pc.or_kleene(pc.is_null(arr), pc.is_nan(arr)).to_numpy(zero_copy_only=False))
            raise ValueError(f"column {name!r} has {n_nan} missing (NaN) ids, first at row {_first_true(mask)}")
        raise TypeError(f"column {name!r} must hold integer or string ids, got {t}")
    if arr.null_count:
        mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
        raise ValueError(f"column {name!r} has {arr.null_count} missing ids, first at row {_first_true(mask)}")
    if pa.types.is_integer(t):
        return arr
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr
    if getattr(pa.types, "is_string_view", lambda _: False)(t):
        return arr.cast(pa.large_string())
    if pa.types.is_null(t) and len(arr) == 0:
        return arr.cast(pa.int64())
    raise TypeError(f"column {name!r} must hold integer or string ids, got {t}")


def _encode_arrow(arr, name: str, vocabulary: IdMap | None, unknown: str):
    pa = _pa()
    import pyarrow.compute as pc
    arr = _check_id_type_arrow(arr, name)
    n = len(arr)
    codes = np.empty(n, dtype=np.int32)
    if vocabulary is not None:
        vocab = vocabulary.to_numpy()
        try:
            value_set = pa.array(vocab)
            if value_set.type != arr.type and not (pa.types.is_integer(value_set.type)
                                                   and pa.types.is_integer(arr.type)):
                value_set = value_set.cast(arr.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            raise TypeError(f"column {name!r} holds {arr.type} ids but the vocabulary holds "
                            f"{vocab.dtype} ids") from None
        pos = 0
        for chunk in arr.chunks:
            if chunk.type != value_set.type and pa.types.is_integer(chunk.type):
                chunk = chunk.cast(value_set.type, safe=False) if _fits(chunk, value_set.type) else chunk
            idx = pc.index_in(chunk, value_set=value_set)
            codes[pos:pos + len(chunk)] = idx.fill_null(-1).to_numpy(zero_copy_only=False)
            pos += len(chunk)
        _handle_unknown(codes, arr, name, unknown)
        return codes, vocabulary
    if n == 0:
        return codes, IdMap(np.empty(0, dtype=np.int64 if pa.types.is_integer(arr.type) else object))
    if pa.types.is_integer(arr.type):
        dense = _encode_dense_ints(arr, codes)
        if dense is not None:
            return codes, dense
    encoded = pc.dictionary_encode(arr).unify_dictionaries()
    dictionary = encoded.chunk(0).dictionary
    order = np.asarray(pc.sort_indices(dictionary))
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    pos = 0
    for chunk in encoded.chunks:
        indices = chunk.indices.to_numpy(zero_copy_only=False)
        for start in range(0, indices.size, 1 << 20):
            block = indices[start:start + (1 << 20)]
            np.take(rank, block, out=codes[pos:pos + block.size])
            pos += block.size
    ids = dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)
    if ids.dtype.kind in "iu" and (ids.dtype.kind == "i" or ids.max() <= np.iinfo(np.int64).max):
        ids = ids.astype(np.int64)
    return codes, IdMap(ids)


def _fits(chunk, target) -> bool:
    """Whether every value of an integer chunk is representable in the integer type ``target``."""
    import pyarrow.compute as pc
    if len(chunk) == chunk.null_count:
        return True
    bounds = pc.min_max(chunk).as_py()
    info = np.iinfo(target.to_pandas_dtype())
    return info.min <= bounds["min"] and bounds["max"] <= info.max


def _encode_dense_ints(arr, codes: np.ndarray) -> IdMap | None:
    """Sorted-order codes of integer ids through a presence table over [min, max] (no hashing).

    Used when the id range is at most max(2n, 2**20) wide, as for the usual 1..n numbering;
    returns None (caller falls back to hashing) for sparse ids such as 64-bit hashes.
    """
    import pyarrow.compute as pc
    bounds = pc.min_max(arr).as_py()
    low, high = int(bounds["min"]), int(bounds["max"])
    span = high - low + 1
    if span > max(2 * len(arr), 1 << 20) or span >= np.iinfo(np.int32).max or high > np.iinfo(np.int64).max:
        return None
    present = np.zeros(span, dtype=bool)
    for block in _blocks(arr):
        present[block - low] = True
    rank = np.cumsum(present, dtype=np.int32)
    rank -= 1
    pos = 0
    for block in _blocks(arr):
        np.take(rank, block - low, out=codes[pos:pos + block.size])
        pos += block.size
    return IdMap(np.flatnonzero(present).astype(np.int64) + low)


def _blocks(arr, size: int = 1 << 20):
    """numpy views of an Arrow integer column, at most ``size`` values each (bounds temporaries)."""
    for chunk in arr.chunks:
        values = chunk.to_numpy()
        for start in range(0, values.size, size):
            yield values[start:start + size]


def _handle_unknown(codes: np.ndarray, arr, name: str, unknown: str) -> None:
    if unknown == "mark":
        return
    missing = codes < 0
    if missing.any():
        first = _first_true(missing)
        example = arr[first].as_py() if hasattr(arr, "chunks") else arr[first]
        raise KeyError(f"column {name!r} has {int(missing.sum())} ids that are not in the vocabulary, "
                       f"first {example!r} at row {first}")


def _encode_numpy(arr: np.ndarray, name: str, vocabulary: IdMap | None, unknown: str):
    kind = arr.dtype.kind
    if kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            raise ValueError(f"column {name!r} has {int(nan.sum())} missing (NaN) ids, first at row {_first_true(nan)}")
        raise TypeError(f"column {name!r} must hold integer or string ids, got {arr.dtype}")
    if kind == "O":
        kinds = {type(x) for x in arr[: min(arr.size, 1)]}
        try:
            vals = arr.astype(str) if kinds <= {str} else arr.astype(np.int64)
        except (TypeError, ValueError):
            raise TypeError(f"column {name!r} mixes id types (e.g. numbers and strings)") from None
        if kinds <= {str} and not all(isinstance(x, str) for x in arr):
            raise TypeError(f"column {name!r} mixes id types (e.g. numbers and strings)")
        arr = vals
        kind = arr.dtype.kind
    if kind not in "iuU":
        raise TypeError(f"column {name!r} must hold integer or string ids, got {arr.dtype}")
    if kind == "U":
        arr = arr.astype(object)
    if vocabulary is not None:
        codes = vocabulary.codes(arr, missing=-1)
        _handle_unknown(codes, arr, name, unknown)
        return codes, vocabulary
    ids, inverse = np.unique(arr, return_inverse=True)
    return inverse.astype(np.int32).reshape(-1), IdMap(ids)


def as_values(col: Any, name: str) -> np.ndarray:
    """A float32 array of ratings/weights; missing values become NaN."""
    if _is_arrow(col):
        pa = _pa()
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t) or pa.types.is_null(t)):
            raise TypeError(f"column {name!r} must be numeric, got {t}")
        chunks = col.chunks if hasattr(col, "chunks") else [col]
        out = np.empty(len(col), dtype=np.float32)
        pos = 0
        for chunk in chunks:
            chunk = chunk.cast(pa.float32())
            out[pos:pos + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
            pos += len(chunk)
        return out
    arr = _numpy_column(col, name)
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"column {name!r} must be numeric, got non-numeric objects") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"column {name!r} must be numeric, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_timestamps(col: Any, name: str) -> np.ndarray:
    """An int64 array of timestamps (datetimes become seconds since the epoch)."""
    if _is_arrow(col):
        pa = _pa()
        t = col.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            col = col.cast(pa.timestamp("s"), safe=False).cast(pa.int64())
        elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
            raise TypeError(f"column {name!r} must hold integer or datetime timestamps, got {t}")
        arr = col.to_numpy() if col.null_count == 0 and not pa.types.is_null(col.type) else \
            col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:
        arr = _numpy_column(col, name)
        if arr.dtype.kind == "M":
            arr = arr.astype("datetime64[s]").astype(np.int64)
        elif arr.dtype.kind == "O":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"column {name!r} must hold integer or datetime timestamps") from None
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"column {name!r} has {int(bad.sum())} missing timestamps, first at row {_first_true(bad)}")
        if np.any(arr != np.floor(arr)):
            raise TypeError(f"column {name!r} must hold whole-number timestamps")
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"column {name!r} must hold integer or datetime timestamps, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)
