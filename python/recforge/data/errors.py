"""Errors and load reports of the data layer.

``DataFormatError`` (a ValueError) names the file, the 1-based line and the column of the first
bad record. Readers called with ``lenient=True`` skip bad records instead and return a
``LoadReport`` listing them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike


class DataFormatError(ValueError):
    """A malformed record: ``path``, ``line`` (1-based, counting a header) and ``column`` say where."""

    def __init__(self, message: str, path: str | PathLike | None = None, line: int | None = None,
                 column: str | None = None):
        self.path, self.line, self.column = path, line, column
        where = []
        if path is not None:
            where.append(f"{path}")
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is absent and could not be downloaded; the message says what to put where."""


@dataclass(frozen=True)
class BadRow:
    """One record skipped by a lenient reader."""

    line: int
    reason: str
    text: str = ""


@dataclass
class LoadReport:
    """What a lenient reader skipped: every bad record with its 1-based line number and reason."""

    path: str | None = None
    n_read: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def n_bad(self) -> int:
        return len(self.bad_rows)

    def __str__(self) -> str:
        head = f"{self.path or '<data>'}: {self.n_read} records read, {self.n_bad} skipped"
        lines = [f"  line {b.line}: {b.reason}" for b in self.bad_rows[:20]]
        if self.n_bad > 20:
            lines.append(f"  ... and {self.n_bad - 20} more")
        return "\n".join([head, *lines])
