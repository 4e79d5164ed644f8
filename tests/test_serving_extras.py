"""Serving beyond the built-in models and the happy path: a custom model class loaded with
`recforge serve --import` (a sequence model, which gets the live history in order), and an event
store that breaks under a running server."""
from __future__ import annotations

import sqlite3
import time

import numpy as np

from serving_helpers import Server, httpx, make_artifact, small_interactions
from test_serving_events import post_batches


def test_sequence_models_get_events_in_order_through_a_custom_model_import(tmp_path):
    """The custom class is registered only in the server and in a helper process (registering it
    here would add it to this process's registry, which other tests enumerate)."""
    import json
    import os
    import subprocess
    import sys

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = {"PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)}
    orders = {555: [5003, 5010], 556: [5010, 5003]}
    script = (
        "import json, sys, numpy as np\n"
        "from serving_helpers import small_interactions\n"
        "from serving_plugin import NextCodes\n"
        "from recforge.serving import save_artifact\n"
        "inter = small_interactions(0)\n"
        "model = NextCodes().fit(inter)\n"
        "save_artifact(model, sys.argv[1], training_data=inter)\n"
        f"orders = {orders!r}\n"
        "print(json.dumps({u: model.recommend([-1], 3, history=[np.array(o)], ids=True)[0][0].tolist()\n"
        "                  for u, o in orders.items()}))\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m")], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **env))
    assert done.returncode == 0, done.stderr
    expected = {int(u): items for u, items in json.loads(done.stdout).items()}
    with Server(tmp_path / "m", "--import", "serving_plugin", env=env) as server:
        post_batches(server.url, [[{"user_id": u, "item_id": i}] for u in orders for i in orders[u]])
        for user in orders:
            body = httpx.get(f"{server.url}/v1/recommendations/{user}", params={"n": 3}).json()
            assert [e["item_id"] for e in body["items"]] == expected[user]
        assert expected[555][0] != expected[556][0]          # the order of the events matters

def test_a_broken_event_store_fails_writes_with_500_and_readiness_not_reads(tmp_path):
    folder = make_artifact(tmp_path / "m")
    store = tmp_path / "events.sqlite3"
    with Server(folder, "--events-url", f"sqlite:///{store}") as server:
        post_batches(server.url, [[{"user_id": 1000, "item_id": 5001}]])
        with sqlite3.connect(store) as conn:
            conn.execute("DROP TABLE recforge_events")
        r = httpx.post(server.url + "/v1/events", json={"events": [{"user_id": 1000, "item_id": 5002}]})
        assert r.status_code == 500
        assert r.json() == {"error": "internal", "detail": "internal server error"}
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.json()["status"]
        assert httpx.get(server.url + "/healthz").status_code == 200
        # recommendations go on from the events read before the failure; the store is read again
        # (and fails) within events_poll_seconds, since nothing announces a dropped table
        failures = 0.0
        deadline = time.monotonic() + 10
        while failures < 1 and time.monotonic() < deadline:
            assert httpx.get(server.url + "/v1/recommendations/1000").status_code == 200
            text = httpx.get(server.url + "/metrics").text
            found = [line for line in text.splitlines() if line.startswith("recforge_event_sync_failures_total")]
            failures = float(found[0].split()[-1]) if found else 0.0
            time.sleep(0.02)
        assert failures >= 1
        assert "no such table" in server.output()          # the cause is logged on the server only


def test_retrain_loop_events_read_back_refit_and_hot_swapped_without_double_counting(tmp_path):
    """Events -> Interactions.from_sql -> refit on training data + events -> save_artifact with
    events_upto -> hot reload: the server then answers exactly as the refitted model."""
    from recforge.data import Interactions
    from recforge.models import ItemKNN
    from recforge.serving import save_artifact

    folder = make_artifact(tmp_path / "m", k=10)
    store = tmp_path / "events.sqlite3"
    with Server(folder, "--events-url", f"sqlite:///{store}", "--reload-poll-seconds", "0.2",
                "--partial-fit-events", "0", "--partial-fit-seconds", "0") as server:
        acknowledged = post_batches(server.url, [[{"user_id": 1001, "item_id": 5000 + j} for j in range(0, 40, 9)],
                                                 [{"user_id": 770077, "item_id": 5002}]])
        events = Interactions.from_sql(f"sqlite:///{store}", "SELECT user_id AS user, item_id AS item, value "
                                                             "FROM recforge_events ORDER BY id")
        base = small_interactions(0)
        users = np.r_[base.user_ids[base.users], events.user_ids[events.users]]
        items = np.r_[base.item_ids[base.items], events.item_ids[events.items]]
        values = np.r_[base.values, events.values]
        retrain = Interactions.from_arrays(users, items, values)
        refitted = ItemKNN(k=10, progress=False, num_threads=1).fit(retrain)
        old = httpx.get(server.url + "/readyz").json()["model_version"]
        save_artifact(refitted, folder, training_data=retrain, events_upto=acknowledged[-1]["last_id"])
        for _ in range(200):
            if httpx.get(server.url + "/readyz").json()["model_version"] != old:
                break
            time.sleep(0.1)
        for user in (1001, 770077, 1002):
            body = httpx.get(f"{server.url}/v1/recommendations/{user}", params={"n": 5}).json()
            want, scores = refitted.recommend([user], 5, ids=True)
            assert body["model_version"] != old
            assert [e["item_id"] for e in body["items"]] == want[0].tolist()
            assert np.allclose([e["score"] for e in body["items"]], scores[0], rtol=1e-5)
