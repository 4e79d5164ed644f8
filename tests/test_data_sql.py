"""Interactions.from_sql against real databases: a SQLite file, and PostgreSQL when one is given
(RECFORGE_TEST_POSTGRES_URL; .ci/run starts one)."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

pytest.importorskip("sqlalchemy", reason='Interactions.from_sql needs SQLAlchemy: pip install "recforge[serve]"')

from recforge.data import Interactions  # noqa: E402

ROWS = [("u1", "i1", 5.0, 100), ("u2", "i1", 3.0, 101), ("u1", "i2", 4.0, 99), ("u3", "i3", 1.0, 102)]


@pytest.fixture
def sqlite_url(tmp_path):
    file = tmp_path / "ratings.sqlite3"
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE ratings (who TEXT, what TEXT, stars REAL, at INTEGER)")
        conn.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?)", ROWS)
        conn.execute("CREATE TABLE numeric (user_id INTEGER, item_id TEXT)")
        conn.executemany("INSERT INTO numeric VALUES (?, ?)", [(7, "42"), (9, "-3"), (7, "1000")])
    return f"sqlite:///{file}"


def check_ratings(inter):
    assert inter.user_ids.to_numpy().tolist() == ["u1", "u2", "u3"]
    assert inter.item_ids.to_numpy().tolist() == ["i1", "i2", "i3"]
    assert [inter.user_ids[u] for u in inter.users] == [r[0] for r in ROWS]
    assert [inter.item_ids[i] for i in inter.items] == [r[1] for r in ROWS]
    assert inter.values.tolist() == [r[2] for r in ROWS]
    assert inter.timestamps.tolist() == [r[3] for r in ROWS]


def test_sqlite_columns_by_alias(sqlite_url):
    inter = Interactions.from_sql(sqlite_url, "SELECT who AS user, what AS item, stars AS value, at AS timestamp "
                                              "FROM ratings ORDER BY rowid")
    check_ratings(inter)
    assert inter.to_csr().toarray()[0].tolist() == [5.0, 4.0, 0.0]


def test_column_names_parameters_and_bound_values(sqlite_url):
    inter = Interactions.from_sql(sqlite_url, "SELECT who, what FROM ratings WHERE stars >= :low ORDER BY rowid",
                                  user="who", item="what", params={"low": 4})
    assert [inter.user_ids[u] for u in inter.users] == ["u1", "u1"]
    assert inter.values is None and inter.timestamps is None


def test_integer_ids_come_back_as_integers_even_from_text(sqlite_url):
    inter = Interactions.from_sql(sqlite_url, "SELECT user_id AS user, item_id AS item FROM numeric ORDER BY rowid")
    assert inter.user_ids.to_numpy().dtype.kind == "i" and inter.item_ids.to_numpy().dtype.kind == "i"
    assert [inter.item_ids[i] for i in inter.items] == [42, -3, 1000]


def test_errors_name_the_problem(sqlite_url):
    with pytest.raises(ValueError, match="'user'"):
        Interactions.from_sql(sqlite_url, "SELECT who, what AS item FROM ratings")
    with pytest.raises(ValueError, match="query"):
        Interactions.from_sql(sqlite_url, "  ")
    with pytest.raises(ValueError, match="url"):
        Interactions.from_sql("ratings.sqlite3", "SELECT 1")


def test_postgresql(tmp_path):
    from serving_helpers import postgres_url

    import sqlalchemy as sa

    from recforge.data.sql import create_engine

    url = postgres_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS sql_test_ratings"))
        conn.execute(sa.text("CREATE TABLE sql_test_ratings (id SERIAL, who TEXT, what TEXT, stars REAL, at BIGINT)"))
        conn.execute(sa.text("INSERT INTO sql_test_ratings (who, what, stars, at) VALUES (:a, :b, :c, :d)"),
                     [dict(zip("abcd", r)) for r in ROWS])
    engine.dispose()
    inter = Interactions.from_sql(url, "SELECT who AS user, what AS item, stars AS value, at AS timestamp "
                                       "FROM sql_test_ratings ORDER BY id")
    check_ratings(inter)
    assert np.allclose(inter.to_csr().toarray(), [[5, 4, 0], [3, 0, 0], [0, 0, 1]])
