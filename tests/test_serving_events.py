"""Events: durable once acknowledged (SIGKILL loses none), replayed as history after a restart,
folded into the model by a background partial_fit and hot-swapped; the SQLite store's settings."""
from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np

from serving_helpers import Server, httpx, make_artifact, small_interactions


def post_batches(url, batches):
    acknowledged = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for batch in batches:
            r = client.post("/v1/events", json={"events": batch})
            assert r.status_code == 200, r.text
            acknowledged.append(r.json())
    return acknowledged


def test_sqlite_store_is_wal_with_full_sync(tmp_path):
    from recforge.serving.event_store import SQLiteEventStore

    store = SQLiteEventStore(tmp_path / "e.sqlite3")
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2           # FULL
    ids = store.append([("u1", "i1", 1.0, 10), ("u2", "i2", 2.5, 11)])
    assert ids == [1, 2]
    assert [(e.user_id, e.item_id, e.value, e.ts) for e in store.since(0)] == [("u1", "i1", 1.0, 10),
                                                                                ("u2", "i2", 2.5, 11)]
    assert [e.id for e in store.since(1)] == [2]
    store.close()


def test_sigkill_after_acknowledged_events_loses_none(tmp_path):
    folder = make_artifact(tmp_path / "m")
    store = tmp_path / "events.sqlite3"
    batches = [[{"user_id": 777000 + b, "item_id": 5000 + (b * 7 + j) % 40, "value": 1.0 + j} for j in range(5)]
               for b in range(20)]
    server = Server(folder, "--events-url", f"sqlite:///{store}", "--partial-fit-events", "0",
                    "--partial-fit-seconds", "0").wait_ready()
    try:
        acknowledged = post_batches(server.url, batches)
        before = httpx.get(server.url + "/v1/recommendations/777003", params={"n": 5}).json()
        server.kill()                                   # no shutdown code runs
    finally:
        server.stop()
    assert sum(a["accepted"] for a in acknowledged) == 100
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT user_id, item_id, value FROM recforge_events ORDER BY id").fetchall()
    sent = [(str(e["user_id"]), str(e["item_id"]), e["value"]) for batch in batches for e in batch]
    assert rows == sent
    with Server(folder, "--events-url", f"sqlite:///{store}") as restarted:
        after = httpx.get(restarted.url + "/v1/recommendations/777003", params={"n": 5}).json()
        assert after["items"] == before["items"]           # the new user's history came back
        assert httpx.get(restarted.url + "/readyz").json()["events"] == 100


def test_concurrent_posts_from_many_clients_are_all_stored(tmp_path):
    folder = make_artifact(tmp_path / "m")
    with Server(folder, workers=2) as server:
        def client_run(c):
            post_batches(server.url, [[{"user_id": 880000 + c, "item_id": 5000 + k % 40}] for k in range(15)])

        threads = [threading.Thread(target=client_run, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert httpx.get(server.url + "/readyz").json()["events"] == 60
        # every worker sees every event: the new users are known whichever worker answers
        for c in range(4):
            for _ in range(3):
                assert httpx.get(f"{server.url}/v1/recommendations/{880000 + c}").status_code == 200


def test_background_partial_fit_is_swapped_in_and_counts_events_once(tmp_path):
    from recforge.data import Interactions
    from recforge.models import ItemKNN

    folder = make_artifact(tmp_path / "m", k=10)
    events = [{"user_id": 1004, "item_id": 5000 + (3 * j) % 40, "value": 1.0} for j in range(4)]
    events += [{"user_id": 990001, "item_id": 5001, "value": 2.0}]
    with Server(folder, "--partial-fit-events", "5", "--partial-fit-seconds", "0") as server:
        first = httpx.get(server.url + "/readyz").json()["model_version"]
        post_batches(server.url, [events])
        version = first
        for _ in range(300):
            version = httpx.get(server.url + "/readyz").json()["model_version"]
            if version != first:
                break
            time.sleep(0.1)
        assert version.startswith(first + "+"), server.output()
        reference = ItemKNN(k=10, progress=False, num_threads=1).fit(small_interactions(0))
        users = np.array([e["user_id"] for e in events])
        items = np.array([e["item_id"] for e in events])
        reference.partial_fit(Interactions.from_arrays(users, items, np.array([e["value"] for e in events])))
        for user in (1004, 990001, 1010):
            body = httpx.get(f"{server.url}/v1/recommendations/{user}", params={"n": 5}).json()
            want, scores = reference.recommend([user], 5, ids=True)
            assert [e["item_id"] for e in body["items"]] == want[0].tolist()
            assert np.allclose([e["score"] for e in body["items"]], scores[0], rtol=1e-5)
        assert 'recforge_model_swaps_total{reason="partial_fit"} 1.0' in httpx.get(server.url + "/metrics").text

