"""The event store: every acknowledged user event, durable before the server answers.

One table, ``recforge_events``::

    id BIGINT primary key (increasing), user_id TEXT, item_id TEXT, value REAL, ts BIGINT (event time,
    seconds), received_at BIGINT (server time, seconds)

* SQLite (default; ``sqlite:///FILE``): the standard library's sqlite3 in WAL mode with
  ``synchronous=FULL``, so a committed batch is in the fsynced write-ahead log before
  ``append`` returns: a server killed right after answering (even SIGKILL, even a power cut)
  loses none of the acknowledged events. Several worker processes share the file (WAL allows
  concurrent readers; writers take turns under ``busy_timeout``).
* PostgreSQL (``postgresql://user@host:port/db``): SQLAlchemy over psycopg 3; a commit is
  durable under PostgreSQL's default ``synchronous_commit=on``. Appends take a transaction-level
  advisory lock first: a sequence hands out ids in call order, not commit order, so two
  concurrent writers could otherwise commit id 12 before id 11, and a worker that had read up
  to 12 would never read 11 (it would be stored, but missing from the live histories until a
  restart). With the lock, ids become visible in increasing order, as in SQLite.

Ids are stored as text (the model's integer ids as their decimal text), so
``Interactions.from_sql(url, "SELECT user_id AS user, item_id AS item, value, ts AS timestamp
FROM recforge_events ORDER BY id")`` reads them back for retraining with their original types.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

TABLE = "recforge_events"
#: the PostgreSQL advisory lock that serialises appends (an arbitrary 63-bit constant)
APPEND_LOCK_KEY = 0x7265_6366_6F72_6765 >> 1


@dataclass(frozen=True)
class StoredEvent:
    id: int
    user_id: str
    item_id: str
    value: float
    ts: int


class EventStore:
    """The interface both stores implement."""

    url: str

    def append(self, events: Sequence[tuple[str, str, float, int]]) -> list[int]:
        """Store (user_id, item_id, value, ts) rows in one transaction; their ids once durable."""
        raise NotImplementedError

    def since(self, last_id: int, limit: int = 100_000) -> list[StoredEvent]:
        """Events with id > last_id in id order (at most ``limit``)."""
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SQLiteEventStore(EventStore):
    """SQLite in WAL mode with synchronous=FULL (see the module docstring)."""

    def __init__(self, file: str | Path):
        self.file = Path(file)
        self.url = f"sqlite:///{self.file}"
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.file), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "user_id TEXT NOT NULL, item_id TEXT NOT NULL, value REAL NOT NULL, "
                           "ts INTEGER NOT NULL, received_at INTEGER NOT NULL)")

    def pragma(self, name: str):
        with self._lock:
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    def append(self, events):
        now = int(time.time())
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [self._conn.execute(f"INSERT INTO {TABLE} (user_id, item_id, value, ts, received_at) "
                                          "VALUES (?, ?, ?, ?, ?)", (u, i, float(v), int(t), now)).lastrowid
                       for u, i, v, t in events]
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return ids

    def since(self, last_id, limit=100_000):
        with self._lock:
            rows = self._conn.execute(f"SELECT id, user_id, item_id, value, ts FROM {TABLE} WHERE id > ? "
                                      "ORDER BY id LIMIT ?", (int(last_id), int(limit))).fetchall()
        return [StoredEvent(*row) for row in rows]

    def count(self):
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])

    def close(self):
        with self._lock:
            self._conn.close()


class SQLAlchemyEventStore(EventStore):
    """PostgreSQL (or any SQLAlchemy database) through SQLAlchemy Core."""

    def __init__(self, url: str):
        from recforge.data.sql import create_engine

        import sqlalchemy as sa

        self.url = url
        self._sa = sa
        self._engine = create_engine(url)
        meta = sa.MetaData()
        self._table = sa.Table(
            TABLE, meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                      autoincrement=True),
            sa.Column("user_id", sa.Text, nullable=False), sa.Column("item_id", sa.Text, nullable=False),
            sa.Column("value", sa.Float, nullable=False), sa.Column("ts", sa.BigInteger, nullable=False),
            sa.Column("received_at", sa.BigInteger, nullable=False))
        meta.create_all(self._engine)

    def append(self, events):
        now = int(time.time())
        rows = [{"user_id": u, "item_id": i, "value": float(v), "ts": int(t), "received_at": now}
                for u, i, v, t in events]
        if not rows:
            return []
        with self._engine.begin() as conn:
            if self._engine.dialect.name == "postgresql":
                # writers take turns (the lock lasts until COMMIT), so ids become visible in id
                # order and a reader's "id > last seen" never skips an id committed late
                conn.execute(self._sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
            result = conn.execute(self._table.insert().returning(self._table.c.id, sort_by_parameter_order=True),
                                  rows)
            return [int(r[0]) for r in result]

    def since(self, last_id, limit=100_000):
        t = self._table
        query = (self._sa.select(t.c.id, t.c.user_id, t.c.item_id, t.c.value, t.c.ts)
                 .where(t.c.id > int(last_id)).order_by(t.c.id).limit(int(limit)))
        with self._engine.connect() as conn:
            return [StoredEvent(int(r[0]), r[1], r[2], float(r[3]), int(r[4])) for r in conn.execute(query)]

    def count(self):
        with self._engine.connect() as conn:
            return int(conn.execute(self._sa.select(self._sa.func.count()).select_from(self._table)).scalar())

    def close(self):
        self._engine.dispose()


def open_event_store(url: str) -> EventStore:
    """The store for ``url``: ``sqlite:///FILE`` (sqlite3, WAL) or a SQLAlchemy URL (PostgreSQL)."""
    if url.startswith("sqlite:///"):
        return SQLiteEventStore(url[len("sqlite:///"):])
    if url.startswith(("postgresql", "postgres:")):
        return SQLAlchemyEventStore(url)
    raise ValueError(f"events url must be sqlite:///FILE or postgresql://..., got {url!r}")


def iter_all(store: EventStore, after: int = 0, page: int = 100_000) -> Iterable[StoredEvent]:
    """Every event after ``after``, read page by page."""
    while True:
        batch = store.since(after, page)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].id
