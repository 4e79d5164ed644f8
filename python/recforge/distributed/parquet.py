"""Parquet output, one partition file per block, each written atomically.

A partition is written to a temporary name in the same folder and renamed into place, so a reader
never sees half a file, and a block recomputed after a worker died overwrites its own partition
with identical content (never a second copy).
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PREFIX = "parquet://"


@dataclass
class ParquetOutput:
    """Where a job's partitions were written: ``path`` and one file per block, in row order."""

    path: Path
    files: list[Path]
    rows: int

    def read(self) -> Any:
        """All partitions as one pyarrow Table, in row order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pa.concat_tables([pq.read_table(f) for f in self.files])


def parse_output(output: Any) -> Path | None:
    """None (gather in memory) or the folder of a ``"parquet://path"`` output (created)."""
    if output is None:
        return None
    if not (isinstance(output, str) and output.startswith(PREFIX) and len(output) > len(PREFIX)):
        raise ValueError(f'output must be None or "parquet://FOLDER", got {output!r}')
    folder = Path(output[len(PREFIX):])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_partition(folder: str, start: int, columns: dict[str, np.ndarray]) -> str:
    """Write one block's columns as ``part-<start>.parquet`` atomically; returns the file name."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError('Parquet output needs pyarrow: pip install "recforge[data]"') from exc
    final = Path(folder) / f"part-{start:012d}.parquet"
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, final)
    return str(final)


def csr_rows_columns(block: Any, start: int) -> dict[str, np.ndarray]:
    """(row, neighbour, score) columns of a CSR block whose first row is ``start``."""
    rows = np.repeat(np.arange(start, start + block.shape[0], dtype=np.int64), np.diff(block.indptr))
    return {"row": rows, "neighbour": block.indices.astype(np.int64), "score": block.data}
