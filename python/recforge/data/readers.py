"""Readers: data frames, Arrow tables, CSV/Parquet files and sequence files -> Interactions.

The caller names the columns (``user``, ``item`` and optionally ``value`` and ``timestamp``).
Files are streamed through pyarrow's readers batch by batch into preallocated numpy columns,
and ids are encoded at the end (a presence table for dense integer ids, Arrow hashing
otherwise), so a large table loads in about the time pandas/pyarrow take to read it while
peak memory stays near the size of the result; needs ``recforge[data]``.

Errors name where the problem is: a missing file (FileNotFoundError), a missing column
(ValueError listing the columns there are), a malformed line — wrong number of fields, a
non-numeric rating, an empty id — (:class:`DataFormatError` with file, 1-based line and column).
With ``lenient=True`` the file readers skip bad lines and return ``(interactions, LoadReport)``.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from recforge.data._deps import require
from recforge.data.columns import as_timestamps, as_values, encode_ids
from recforge.data.errors import BadRow, DataFormatError, LoadReport
from recforge.data.interactions import Interactions


def _needed(user: str, item: str, value: str | None, timestamp: str | None) -> list[str]:
    cols = [user, item] + [c for c in (value, timestamp) if c is not None]
    if len(set(cols)) != len(cols):
        raise ValueError(f"user/item/value/timestamp columns must differ, got {cols}")
    return cols


def _check_columns(available: list[str], needed: list[str], source: str) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise ValueError(f"column {missing[0]!r} not found in {source}; available columns: {list(available)}")


def from_arrow(table: Any, user: str = "user", item: str = "item", value: str | None = None,
               timestamp: str | None = None, *, item_metadata: Any = None, user_ids: Any = None,
               item_ids: Any = None, unknown: str = "raise", _source: str = "the table") -> Interactions:
    """From a pyarrow Table (or RecordBatch) with the named columns."""
    pa = require("pyarrow", purpose="Arrow input")
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise TypeError(f"table must be a pyarrow.Table, got {type(table).__name__}")
    needed = _needed(user, item, value, timestamp)
    _check_columns(table.column_names, needed, _source)
    if table.num_rows == 0:
        raise ValueError(f"{_source} is empty: no interactions to load")
    return Interactions.from_arrays(
        table.column(user), table.column(item),
        None if value is None else _named(table.column(value), value, "value"),
        None if timestamp is None else table.column(timestamp),
        user_ids=user_ids, item_ids=item_ids, item_metadata=item_metadata, unknown=unknown,
        column_names=(user, item, value, timestamp))


def _from_batches(batches: Any, user: str, item: str, value: str | None, timestamp: str | None, *,
                  source: str, capacity: int | None = None, item_metadata: Any = None,
                  user_ids: Any = None, item_ids: Any = None, unknown: str = "raise") -> Interactions:
    """Interactions from a stream of record batches, converting each batch as it arrives.

    Values and timestamps are written batch by batch into arrays sized for ``capacity`` rows (an
    upper bound, e.g. the file's line count); integer ids likewise (int32 while they fit), text ids
    as Arrow chunks. Codes are made at the end, as sorted codes need the whole column. The
    parser's buffers never pile up, and peak memory stays near the size of the final arrays.
    """
    require("pyarrow")
    if unknown not in ("raise", "drop"):
        raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}")
    users, items = _IdColumn(capacity), _IdColumn(capacity)
    values = None if value is None else _Column(np.float32, capacity)
    times = None if timestamp is None else _Column(np.int64, capacity)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        users.append(batch.column(user))
        items.append(batch.column(item))
        if values is not None:
            values.append(as_values(_named(batch.column(value), value, "value"), value))
        if times is not None:
            times.append(as_timestamps(batch.column(timestamp), timestamp))
        del batch
    if users.empty:
        raise ValueError(f"{source} is empty: no interactions to load")
    mode = "mark" if unknown == "drop" else "raise"
    ucodes, umap = encode_ids(users.take(), user, user_ids, mode)
    icodes, imap = encode_ids(items.take(), item, item_ids, mode)
    return Interactions._from_codes(ucodes, umap, icodes, imap, None if values is None else values.result(),
                                    None if times is None else times.result(), drop_unknown=mode == "mark",
                                    item_metadata=item_metadata)


class _Column:
    """A numpy column filled batch by batch; preallocated to ``capacity`` rows, grown 1.5x if needed.

    Pages of the unused tail are never touched, so an over-estimated capacity costs no memory.
    """

    def __init__(self, dtype: Any, capacity: int | None):
        self.buffer = np.empty(max(int(capacity or 0), 1 << 16), dtype=dtype)
        self.size = 0

    def append(self, part: np.ndarray) -> None:
        end = self.size + part.size
        if end > self.buffer.size:
            grown = np.empty(max(end, int(self.buffer.size * 1.5)), dtype=self.buffer.dtype)
            grown[:self.size] = self.buffer[:self.size]
            self.buffer = grown
        self.buffer[self.size:end] = part
        self.size = end

    def widen(self, dtype: Any) -> None:
        wider = np.empty(self.buffer.size, dtype=dtype)
        wider[:self.size] = self.buffer[:self.size]
        self.buffer = wider

    def result(self) -> np.ndarray:
        return self.buffer[:self.size]


def _int64_compatible(col: Any) -> bool:
    """Integer ids without nulls whose values all fit int64 (huge uint64 ids stay in Arrow)."""
    pa = require("pyarrow")
    if not pa.types.is_integer(col.type) or col.null_count:
        return False
    if col.type != pa.uint64() or len(col) == 0:
        return True
    import pyarrow.compute as pc
    return pc.max(col).as_py() <= np.iinfo(np.int64).max


class _IdColumn:
    """An id column filled batch by batch: integers without nulls go into one numpy buffer (int32
    while they fit), anything else (text, nulls) is kept as Arrow chunks for :func:`encode_ids`."""

    def __init__(self, capacity: int | None):
        self.capacity = capacity
        self.numbers: _Column | None = None
        self.chunks: list[Any] = []

    @property
    def empty(self) -> bool:
        return self.numbers is None and not self.chunks

    def append(self, col: Any) -> None:
        pa = require("pyarrow")
        if _int64_compatible(col) and not self.chunks:
            arr = col.to_numpy()
            small = np.iinfo(np.int32)
            fits = arr.dtype.kind == "i" and (arr.size == 0 or (small.min <= arr.min() and arr.max() <= small.max))
            if self.numbers is None:
                self.numbers = _Column(np.int32 if fits else np.int64, self.capacity)
            elif not fits and self.numbers.buffer.dtype == np.int32:
                self.numbers.widen(np.int64)
            self.numbers.append(arr)
            return
        if self.numbers is not None:
            self.chunks.append(pa.array(self.numbers.result()))
            self.numbers = None
        self.chunks.append(col)

    def take(self) -> Any:
        """The whole column as one Arrow ChunkedArray (numpy wrapped without copying); empties self."""
        pa = require("pyarrow")
        if self.numbers is not None:
            column = pa.chunked_array([pa.array(self.numbers.result())])
            self.numbers = None
            return column
        column = _as_chunked_ids(self.chunks)
        self.chunks = []
        return column


def _as_chunked_ids(chunks: list[Any]) -> Any:
    """One Arrow ChunkedArray over id chunks (integer chunks of different widths become int64)."""
    pa = require("pyarrow")
    arrays = list(chunks)
    types = {a.type for a in arrays}
    if len(types) > 1:
        arrays = [a.cast(pa.int64()) if pa.types.is_integer(a.type) else a for a in arrays]
    return pa.chunked_array(arrays)


def _named(col: Any, name: str, role: str) -> Any:
    pa = require("pyarrow")
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_decimal(t) or pa.types.is_null(t)):
        raise TypeError(f"column {name!r} ({role}) must be numeric, got {t}")
    return col


def from_pandas(df: Any, user: str = "user", item: str = "item", value: str | None = None,
                timestamp: str | None = None, *, item_metadata: Any = None, user_ids: Any = None,
                item_ids: Any = None, unknown: str = "raise") -> Interactions:
    """From a pandas DataFrame with the named columns (ids: ints or strings, one type per column)."""
    pd = require("pandas", purpose="pandas input")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas.DataFrame, got {type(df).__name__}")
    needed = _needed(user, item, value, timestamp)
    _check_columns([str(c) for c in df.columns], needed, "the DataFrame")
    if len(df) == 0:
        raise ValueError("the DataFrame is empty: no interactions to load")
    pa = require("pyarrow", purpose="pandas input")
    cols = {}
    for name in needed:
        try:
            cols[name] = pa.chunked_array([pa.array(df[name], from_pandas=True)])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            kind = "ids" if name in (user, item) else "values"
            raise TypeError(f"column {name!r} mixes {kind} of different types: {exc}") from None
    return from_arrow(pa.table(cols), user, item, value, timestamp, item_metadata=item_metadata,
                      user_ids=user_ids, item_ids=item_ids, unknown=unknown, _source="the DataFrame")


def from_polars(df: Any, user: str = "user", item: str = "item", value: str | None = None,
                timestamp: str | None = None, **kwargs: Any) -> Interactions:
    """From a polars DataFrame with the named columns (converted to Arrow without copying)."""
    pl = require("polars", extra=None, purpose="polars input")
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"df must be a polars.DataFrame, got {type(df).__name__}")
    needed = _needed(user, item, value, timestamp)
    _check_columns(df.columns, needed, "the polars DataFrame")
    return from_arrow(df.select(needed).to_arrow(), user, item, value, timestamp,
                      _source="the polars DataFrame", **kwargs)


def read_parquet(path: Any, user: str = "user", item: str = "item", value: str | None = None,
                 timestamp: str | None = None, **kwargs: Any) -> Interactions:
    """Read the named columns of a Parquet file."""
    require("pyarrow", purpose="Parquet files")
    import pyarrow.parquet as pq
    path = _existing(path)
    needed = _needed(user, item, value, timestamp)
    parquet = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering holds whole row groups
    _check_columns(parquet.schema_arrow.names, needed, str(path))
    return _from_batches(parquet.iter_batches(batch_size=1 << 18, columns=needed), user, item, value,
                         timestamp, source=str(path), capacity=parquet.metadata.num_rows, **kwargs)


def read_csv(path: Any, user: str = "user", item: str = "item", value: str | None = None,
             timestamp: str | None = None, *, sep: str = ",", header: bool = True,
             names: list[str] | None = None, encoding: str = "utf-8", lenient: bool = False,
             item_metadata: Any = None, user_ids: Any = None, item_ids: Any = None,
             unknown: str = "raise") -> Interactions | tuple[Interactions, LoadReport]:
    """Read a delimited text file (CSV, TSV, ``::``-separated ...) with the named columns.

    ``header=False`` needs ``names`` (all columns of the file, in order). ``sep`` may have
    several characters (e.g. "::" for MovieLens 1M). A malformed line raises
    :class:`DataFormatError` naming the file, line and column; with ``lenient=True`` bad lines
    are skipped and the result is ``(interactions, report)``.
    """
    require("pyarrow", purpose="reading CSV files")
    path = _existing(path)
    needed = _needed(user, item, value, timestamp)
    if not header and not names:
        raise ValueError("header=False needs names=[...] for every column of the file")
    if not sep or "\n" in sep or "\r" in sep or '"' in sep:
        raise ValueError(f"sep must be a non-empty separator other than quotes or newlines, got {sep!r}")
    kwargs = dict(item_metadata=item_metadata, user_ids=user_ids, item_ids=item_ids, unknown=unknown)
    spec = _CsvSpec(path, sep, header, names, encoding, needed, value, timestamp, (user, item))
    _check_columns(spec.column_names(), needed, str(path))
    report = LoadReport(path=str(path))
    if lenient:
        report.bad_rows = spec.find_bad_lines(limit=None)
    try:
        result = spec.read(skip_lines={b.line for b in report.bad_rows}, **kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataFormatError) and exc.line is not None:
            raise
        bad = spec.find_bad_lines(limit=1) if not lenient else []
        if bad:
            raise DataFormatError(bad[0].reason, path, bad[0].line, _column_of(bad[0].reason)) from None
        raise DataFormatError(str(exc), path) from None
    if lenient:
        report.n_read = len(result)
        return result, report
    return result


def _column_of(reason: str) -> str | None:
    return reason.split("'")[1] if reason.startswith("column '") else None


def _existing(path: Any) -> Path:
    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"interactions file not found: {p}")
    return p


class _IdTypeChanged(Exception):
    """An id column looked numeric in the first block but holds text later."""


class _CsvSpec:
    """One delimited file's layout, with the fast Arrow read and the slow line-by-line diagnosis."""

    def __init__(self, path: Path, sep: str, header: bool, names: list[str] | None, encoding: str,
                 needed: list[str], value: str | None, timestamp: str | None, ids: tuple[str, str]):
        self.path, self.sep, self.header, self.names = path, sep, header, names
        self.encoding, self.needed, self.value, self.timestamp, self.ids = encoding, needed, value, timestamp, ids

    def _source(self, skip_lines: set[int]) -> Any:
        multi = len(self.sep) > 1
        if not multi and not skip_lines:
            return str(self.path)  # pyarrow decompresses .gz itself
        text = self.path.read_bytes()
        if self.path.suffix == ".gz":
            text = gzip.decompress(text)
        if skip_lines:
            lines = text.splitlines(keepends=True)
            text = b"".join(line for n, line in enumerate(lines, 1) if n not in skip_lines)
        if multi:
            text = text.replace(self.sep.encode(self.encoding), b"\x1f")
        return io.BytesIO(text)

    def read(self, skip_lines: set[int], **kwargs: Any) -> Interactions:
        """Stream the file through pyarrow's CSV reader into Interactions.

        Types are inferred from the first block; when an id column turns out to hold text further
        down (and no line is malformed), the file is read again with the ids as strings.
        """
        try:
            return self._read(skip_lines, ids_as_text=False, **kwargs)
        except _IdTypeChanged:
            return self._read(skip_lines, ids_as_text=True, **kwargs)

    def _read(self, skip_lines: set[int], ids_as_text: bool, **kwargs: Any) -> Interactions:
        pa = require("pyarrow")
        import pyarrow.csv as pcsv
        delimiter = "\x1f" if len(self.sep) > 1 else self.sep
        if self.names:
            read = pcsv.ReadOptions(column_names=list(self.names), skip_rows=1 if self.header else 0,
                                    encoding=self.encoding, block_size=1 << 22)
        else:
            read = pcsv.ReadOptions(encoding=self.encoding, block_size=1 << 22)
        types = {name: pa.string() for name in self.ids} if ids_as_text else {}
        if self.value is not None:
            types[self.value] = pa.float32()
        convert = pcsv.ConvertOptions(include_columns=self.needed, column_types=types,
                                      null_values=[""], strings_can_be_null=True)
        user, item = self.ids
        try:
            reader = pcsv.open_csv(self._source(skip_lines), read_options=read,
                                   parse_options=pcsv.ParseOptions(delimiter=delimiter),
                                   convert_options=convert)
            return _from_batches(reader, user, item, self.value, self.timestamp, source=str(self.path),
                                 capacity=self.max_records(), **kwargs)
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "Empty CSV file" in message:
                raise DataFormatError("the file is empty", self.path) from None
            if not ids_as_text and "conversion error" in message and not self.find_bad_lines(limit=1):
                raise _IdTypeChanged() from None
            raise ValueError(message) from None

    def max_records(self) -> int:
        """An upper bound on the number of records, without reading an uncompressed file.

        A record of k fields takes at least k bytes (k - 1 separators and a line break), so an
        uncompressed file holds at most size / k + 1 records; gzip files have their lines counted.
        """
        if self.path.suffix != ".gz":
            return self.path.stat().st_size // max(len(self.column_names()), 1) + 1
        count = 0
        opener = gzip.open if self.path.suffix == ".gz" else open
        with opener(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                count += max(block.count(b"\n"), block.count(b"\r"))
        return count + 1

    def column_names(self) -> list[str]:
        if self.names:
            return list(self.names)
        with _open_text(self.path, self.encoding) as f:
            first = f.readline().rstrip("\r\n")
        if not first:
            raise DataFormatError("the file is empty (no header line)", self.path)
        return self._split_line(first)

    def _split_line(self, line: str) -> list[str]:
        if len(self.sep) > 1:
            return line.split(self.sep)
        return next(csv.reader([line], delimiter=self.sep))

    def find_bad_lines(self, limit: int | None) -> list[BadRow]:
        """Every malformed line (or the first ``limit``): field count, empty ids, non-numeric values."""
        names = self.column_names()
        positions = {name: names.index(name) for name in self.needed}
        bad: list[BadRow] = []
        first_data_line = 2 if self.header else 1
        with _open_text(self.path, self.encoding) as f:
            for n, raw in enumerate(f, 1):
                if n < first_data_line:
                    continue
                line = raw.rstrip("\r\n")
                if not line:
                    continue
                reason = self._problem(line, names, positions)
                if reason:
                    bad.append(BadRow(n, reason, line[:200]))
                    if limit is not None and len(bad) >= limit:
                        break
        return bad

    def _problem(self, line: str, names: list[str], positions: dict[str, int]) -> str | None:
        try:
            fields = self._split_line(line)
        except csv.Error as exc:
            return f"unparsable line: {exc}"
        if len(fields) != len(names):
            return f"expected {len(names)} fields, got {len(fields)}"
        for name in self.ids:
            if fields[positions[name]].strip() == "":
                return f"column {name!r} has an empty id"
        if self.value is not None and not _is_number(fields[positions[self.value]]):
            return f"column {self.value!r} has a non-numeric value {fields[positions[self.value]]!r}"
        if self.timestamp is not None and not _is_number(fields[positions[self.timestamp]], integral=True):
            return f"column {self.timestamp!r} has a non-numeric timestamp {fields[positions[self.timestamp]]!r}"
        return None


def _open_text(path: Path, encoding: str) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def _is_number(text: str, integral: bool = False) -> bool:
    try:
        x = float(text)
    except ValueError:
        return False
    return not integral or (math.isfinite(x) and x == int(x))


def read_sequences(path: Any, *, positions_as_timestamps: bool = True, lenient: bool = False,
                   item_metadata: Any = None, user_ids: Any = None, item_ids: Any = None
                   ) -> Interactions | tuple[Interactions, LoadReport]:
    """Read a file of lines ``user item item ...`` (space-separated integer ids).

    This is the format of the S3-Rec Amazon sequences (items in chronological order) and of the
    LightGCN ``train.txt``/``test.txt`` splits. Each item's position in its line (0, 1, ...) is
    stored as its timestamp unless ``positions_as_timestamps=False``. A user listed without items
    stays in the user vocabulary. Blank lines are ignored.
    """
    path = _existing(path)
    with open(path, "rb") as f:
        lines = f.read().decode("ascii", errors="replace").splitlines()
    report = LoadReport(path=str(path))
    tokens = [line.split() for line in lines]
    bad = [n for n, toks in enumerate(tokens, 1) if toks and not _all_ints(toks)]
    if bad:
        first = bad[0]
        if not lenient:
            token = next(t for t in tokens[first - 1] if not _is_int(t))
            raise DataFormatError(f"expected integer ids, got {token!r}", path, first,
                                  "user" if not _is_int(tokens[first - 1][0]) else "item")
        report.bad_rows = [BadRow(n, "expected integer ids", lines[n - 1][:200]) for n in bad]
        bad_set = set(bad)
        tokens = [t for n, t in enumerate(tokens, 1) if n not in bad_set]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise DataFormatError("the file has no sequences", path)
    lengths = np.fromiter((len(t) - 1 for t in tokens), dtype=np.int64, count=len(tokens))
    flat = np.array([tok for t in tokens for tok in t]).astype(np.int64)
    starts = np.r_[0, np.cumsum(lengths + 1)[:-1]]
    heads = flat[starts]
    is_item = np.ones(flat.size, dtype=bool)
    is_item[starts] = False
    users = np.repeat(heads, lengths)
    items = flat[is_item]
    times = None
    if positions_as_timestamps:
        offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
        times = np.arange(items.size, dtype=np.int64) - offsets
    from recforge.data.idmap import IdMap
    umap = user_ids if user_ids is not None else IdMap(np.unique(heads))
    result = Interactions.from_arrays(users, items, None, times, user_ids=umap, item_ids=item_ids,
                                      item_metadata=item_metadata)
    if lenient:
        report.n_read = len(result)
        return result, report
    return result


def _is_int(token: str) -> bool:
    return token.lstrip("-").isdigit()


def _all_ints(tokens: list[str]) -> bool:
    return all(_is_int(t) for t in tokens)
