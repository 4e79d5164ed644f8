"""recforge.data: user-item interactions, readers, cleaning and train/test splits.

Public API::

    from recforge.data import Interactions, clean, split

    inter = Interactions.read_csv("ratings.csv", user="userId", item="movieId",
                                  value="rating", timestamp="timestamp")
    inter, report = clean(inter, rating_range=(0.5, 5), min_user_count=5)
    train, test = split.leave_last_out(inter, n=1)
    R = train.to_csr()                      # users x items, same shape as test.to_csr()

* :class:`Interactions` — int32 user/item codes, float32 values, int64 timestamps, two-way id
  maps (:class:`IdMap`), optional item metadata; ``to_csr``, ``to_sequences``, ``subset``.
* readers — ``from_pandas``, ``from_polars``, ``from_arrow``, ``read_csv``, ``read_parquet``,
  ``read_sequences`` (need ``pip install recforge[data]``).
* :func:`clean` -> ``(Interactions, CleanReport)``; :mod:`recforge.data.split` — ``random``,
  ``leave_last_out``, ``temporal``, ``kfold``, ``user_kfold``, ``predefined``.
* errors — :class:`DataFormatError` (file, line, column), :class:`DatasetNotFoundError`,
  :class:`LoadReport` for ``lenient=True`` readers.

Dataset loaders live in :mod:`recforge.datasets`.
"""
from recforge.data import split
from recforge.data.clean import CleanReport, clean
from recforge.data.errors import BadRow, DataFormatError, DatasetNotFoundError, LoadReport
from recforge.data.idmap import IdMap
from recforge.data.interactions import Interactions
from recforge.data.readers import from_arrow, from_pandas, from_polars, read_csv, read_parquet, read_sequences
from recforge.data.split import SplitReport, SplitResult

__all__ = ["Interactions", "IdMap", "clean", "CleanReport", "split", "SplitResult", "SplitReport",
           "from_arrow", "from_pandas", "from_polars", "read_csv", "read_parquet", "read_sequences",
           "DataFormatError", "DatasetNotFoundError", "LoadReport", "BadRow"]
