"""Reading interactions from a SQL database (SQLite, PostgreSQL, anything SQLAlchemy speaks).

    inter = Interactions.from_sql("sqlite:///model.events.sqlite3",       # recforge serve's event store
                                  "SELECT user_id AS user, item_id AS item, value, ts AS timestamp "
                                  "FROM recforge_events ORDER BY id")

The query's result columns are found by name: ``user`` and ``item`` (required), ``value`` and
``timestamp`` (optional; other names via the keyword arguments). Rows keep the query's order.
Needs SQLAlchemy (``pip install "recforge[serve]"``) and, for PostgreSQL, a driver such as
psycopg (``postgresql+psycopg://...``; a bare ``postgresql://`` URL is read as psycopg too).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def sqlalchemy_url(url: str) -> str:
    """``url`` with a bare ``postgresql://`` scheme pointed at the psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_engine(url: str) -> Any:
    """A SQLAlchemy engine for ``url``; ImportError naming the extra when SQLAlchemy is absent."""
    try:
        import sqlalchemy
    except ImportError:
        raise ImportError('reading from SQL needs SQLAlchemy: pip install "recforge[serve]"') from None
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"url must be a database URL such as sqlite:///file.db or "
                         f"postgresql://user@host/db, got {url!r}")
    return sqlalchemy.create_engine(sqlalchemy_url(url))


def read_sql(url: str, query: str, *, user: str = "user", item: str = "item", value: str | None = "value",
             timestamp: str | None = "timestamp", params: Mapping[str, Any] | None = None, **kwargs: Any):
    """The rows of ``query`` (bound ``params``) at ``url`` as :class:`Interactions`.

    ``value``/``timestamp`` name optional columns: used when the result has them, ignored when
    it does not (pass None to ignore a column the result has). Further keyword arguments go to
    :meth:`Interactions.from_arrays` (``user_ids=``, ``item_ids=``, ``unknown=``).
    """
    import sqlalchemy

    from recforge.data.interactions import Interactions

    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be a non-empty SQL string")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sqlalchemy.text(query), dict(params or {}))
            names = list(result.keys())
            rows = result.fetchall()
    finally:
        engine.dispose()
    for needed in (user, item):
        if needed not in names:
            raise ValueError(f"the query's result has no column {needed!r} (it has {names}); "
                             f"alias it (SELECT ... AS {needed}) or pass {needed}=")
    columns = {name: [row[k] for row in rows] for k, name in enumerate(names)}
    values = columns.get(value) if value else None
    times = columns.get(timestamp) if timestamp else None
    return Interactions.from_arrays(
        _id_column(columns[user]), _id_column(columns[item]),
        None if values is None else np.asarray(values, dtype=np.float64),
        None if times is None else np.asarray(times, dtype=np.int64),
        column_names=(user, item, value, timestamp), **kwargs)


def _id_column(values: list) -> np.ndarray:
    """Ids as int64 when every one is an integer or the canonical text of one ("42", not "042"),
    else as strings (so integer ids stored in a TEXT column come back as the integers they were)."""
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in values):
        return np.asarray(values, dtype=np.int64)
    texts = [str(x) for x in values]
    if all(_canonical_int(t) for t in texts):
        return np.asarray([int(t) for t in texts], dtype=np.int64)
    return np.asarray(texts, dtype=object)


def _canonical_int(text: str) -> bool:
    try:
        return str(int(text)) == text and abs(int(text)) < 2 ** 63
    except ValueError:
        return False
