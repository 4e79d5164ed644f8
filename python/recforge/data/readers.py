"""Readers: data frames, Arrow tables, CSV/Parquet files and sequence files -> Interactions.

The caller names the columns (``user``, ``item`` and optionally ``value`` and ``timestamp``).
Files are parsed by pyarrow (multi-threaded) and ids are dictionary-encoded in Arrow, so a
large table loads in about the time pyarrow takes to read it; needs ``recforge[data]``.

Errors name where the problem is: a missing file (FileNotFoundError), a missing column
(ValueError listing the columns there are), a malformed line — wrong number of fields, a
non-numeric rating, an empty id — (:class:`DataFormatError` with file, 1-based line and column).
With ``lenient=True`` the file readers skip bad lines and return ``(interactions, LoadReport)``.
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from recforge.data._deps import require
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
        user_ids=user_ids, item_ids=item_ids, item_metadata=item_metadata, unknown=unknown)


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
    pl = require("polars", purpose="polars input")
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
    _check_columns(pq.read_schema(path).names, needed, str(path))
    table = pq.read_table(path, columns=needed)
    return from_arrow(table, user, item, value, timestamp, _source=str(path), **kwargs)


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
    report = LoadReport(path=str(path))
    if lenient:
        report.bad_rows = spec.find_bad_lines(limit=None)
    table = None
    try:
        table = spec.read_table(skip_lines={b.line for b in report.bad_rows})
        result = from_arrow(table, user, item, value, timestamp, _source=str(path), **kwargs)
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


class _CsvSpec:
    """One delimited file's layout, with the fast Arrow read and the slow line-by-line diagnosis."""

    def __init__(self, path: Path, sep: str, header: bool, names: list[str] | None, encoding: str,
                 needed: list[str], value: str | None, timestamp: str | None, ids: tuple[str, str]):
        self.path, self.sep, self.header, self.names = path, sep, header, names
        self.encoding, self.needed, self.value, self.timestamp, self.ids = encoding, needed, value, timestamp, ids

    def _source(self, skip_lines: set[int]) -> Any:
        multi = len(self.sep) > 1
        if not multi and not skip_lines:
            return str(self.path)
        text = self.path.read_bytes()
        if skip_lines:
            lines = text.splitlines(keepends=True)
            text = b"".join(line for n, line in enumerate(lines, 1) if n not in skip_lines)
        if multi:
            text = text.replace(self.sep.encode(self.encoding), b"\x1f")
        return io.BytesIO(text)

    def read_table(self, skip_lines: set[int]) -> Any:
        pa = require("pyarrow")
        import pyarrow.csv as pcsv
        delimiter = "\x1f" if len(self.sep) > 1 else self.sep
        read = pcsv.ReadOptions(column_names=None if self.header else list(self.names),
                                encoding=self.encoding, block_size=1 << 24)
        if self.header and self.names:
            read = pcsv.ReadOptions(column_names=list(self.names), skip_rows=1, encoding=self.encoding,
                                    block_size=1 << 24)
        column_names = self._column_names()
        _check_columns(column_names, self.needed, str(self.path))
        types = {}
        if self.value is not None:
            types[self.value] = pa.float32()
        convert = pcsv.ConvertOptions(include_columns=self.needed, column_types=types,
                                      null_values=[""], strings_can_be_null=True)
        try:
            return pcsv.read_csv(self._source(skip_lines), read_options=read,
                                 parse_options=pcsv.ParseOptions(delimiter=delimiter),
                                 convert_options=convert)
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                raise DataFormatError("the file is empty", self.path) from None
            raise ValueError(str(exc)) from None

    def _column_names(self) -> list[str]:
        if self.names:
            return list(self.names)
        with open(self.path, encoding=self.encoding, newline="") as f:
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
        names = self._column_names()
        positions = {name: names.index(name) for name in self.needed}
        bad: list[BadRow] = []
        first_data_line = 2 if self.header else 1
        with open(self.path, encoding=self.encoding, newline="") as f:
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
