"""The PostgreSQL event store through a real server (RECFORGE_TEST_POSTGRES_URL; .ci/run starts one
with .ci/postgres.sh; skipped elsewhere with a message, an error under CI=true)."""
from __future__ import annotations

import uuid

import pytest

from serving_helpers import Server, httpx, make_artifact, postgres_url


@pytest.fixture
def pg_url():
    return postgres_url()


def fresh_database(url: str) -> str:
    """A new empty database on the test server, so runs never see each other's events."""
    import sqlalchemy as sa

    from recforge.data.sql import create_engine

    name = "serving_" + uuid.uuid4().hex[:12]
    engine = create_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def test_postgres_store_roundtrip(pg_url):
    from recforge.serving.event_store import open_event_store

    store = open_event_store(fresh_database(pg_url))
    ids = store.append([("u1", "i1", 1.0, 10), ("u2", "i2", 2.5, 11)])
    assert ids == sorted(ids) and len(set(ids)) == 2
    assert [(e.user_id, e.item_id, e.value, e.ts) for e in store.since(0)] == [("u1", "i1", 1.0, 10),
                                                                                ("u2", "i2", 2.5, 11)]
    assert [e.id for e in store.since(ids[0])] == [ids[1]]
    assert store.count() == 2
    store.close()


def test_events_in_postgres_survive_sigkill_and_read_back_with_from_sql(tmp_path, pg_url):
    from recforge.data import Interactions

    url = fresh_database(pg_url)
    folder = make_artifact(tmp_path / "m")
    sent = [{"user_id": 660000 + b, "item_id": 5000 + (b * 3 + j) % 40, "value": float(j + 1)}
            for b in range(10) for j in range(3)]
    server = Server(folder, "--events-url", url, "--partial-fit-events", "0", "--partial-fit-seconds", "0").wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            for start in range(0, len(sent), 3):
                assert client.post("/v1/events", json={"events": sent[start:start + 3]}).status_code == 200
            before = client.get("/v1/recommendations/660004", params={"n": 5}).json()
        server.kill()
    finally:
        server.stop()
    inter = Interactions.from_sql(url, "SELECT user_id AS user, item_id AS item, value, ts AS timestamp "
                                       "FROM recforge_events ORDER BY id")
    got = [(int(inter.user_ids[u]), int(inter.item_ids[i]), float(v))
           for u, i, v in zip(inter.users, inter.items, inter.values)]
    assert got == [(e["user_id"], e["item_id"], e["value"]) for e in sent]
    with Server(folder, "--events-url", url) as restarted:
        after = httpx.get(restarted.url + "/v1/recommendations/660004", params={"n": 5}).json()
        assert after["items"] == before["items"]
        assert httpx.get(restarted.url + "/readyz").json()["events"] == len(sent)


def test_concurrent_appends_become_visible_in_id_order(pg_url):
    """A writer holding an uncommitted event must not let a later writer's higher id become
    visible first: a reader that saw the higher id would never read the lower one."""
    import threading

    import sqlalchemy as sa

    from recforge.data.sql import create_engine
    from recforge.serving.event_store import APPEND_LOCK_KEY, TABLE, open_event_store

    url = fresh_database(pg_url)
    store = open_event_store(url)
    slow = create_engine(url)
    try:
        with slow.connect() as conn:
            transaction = conn.begin()          # a writer that is slow to commit, as the store appends
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
            first = conn.execute(sa.text(f"INSERT INTO {TABLE} (user_id, item_id, value, ts, received_at) "
                                         "VALUES ('u1', 'i1', 1.0, 1, 1) RETURNING id")).scalar()
            later = {}
            writer = threading.Thread(target=lambda: later.update(ids=store.append([("u2", "i2", 1.0, 2)])))
            writer.start()
            writer.join(1.0)
            assert writer.is_alive()                       # waits for the first writer's commit
            assert [e.id for e in store.since(0)] == []    # nothing visible out of order meanwhile
            transaction.commit()
        writer.join(30)
        assert not writer.is_alive() and later["ids"][0] > first
        assert [e.id for e in store.since(0)] == [first, later["ids"][0]]
    finally:
        slow.dispose()
        store.close()
