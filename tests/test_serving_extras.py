"""Serving beyond the built-in models and the happy path: a custom model class loaded with
`recforge serve --import` (a sequence model, which gets the live history in order), and an event
store that breaks under a running server."""
from __future__ import annotations

import sqlite3

import numpy as np

from serving_helpers import Server, httpx, make_artifact, small_interactions
from test_serving_events import post_batches


def test_sequence_models_get_events_in_order_through_a_custom_model_import(tmp_path):
    import os

    from serving_plugin import NextCodes

    from recforge.serving import save_artifact

    inter = small_interactions(0)
    model = NextCodes().fit(inter)
    save_artifact(model, tmp_path / "m", training_data=inter)
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = {"PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)}
    with Server(tmp_path / "m", "--import", "serving_plugin", env=env) as server:
        post_batches(server.url, [[{"user_id": 555, "item_id": 5003}], [{"user_id": 555, "item_id": 5010}],
                                  [{"user_id": 556, "item_id": 5010}], [{"user_id": 556, "item_id": 5003}]])
        for user, order in ((555, [5003, 5010]), (556, [5010, 5003])):
            body = httpx.get(f"{server.url}/v1/recommendations/{user}", params={"n": 3}).json()
            items, _ = model.recommend([-1], 3, history=[np.array(order)], ids=True)
            assert [e["item_id"] for e in body["items"]] == items[0].tolist()
        first = {u: httpx.get(f"{server.url}/v1/recommendations/{u}").json()["items"][0]["item_id"] for u in (555, 556)}
        assert first[555] != first[556]                     # the order of the events matters


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
        # recommendations go on from the events read before the failure
        assert httpx.get(server.url + "/v1/recommendations/1000").status_code == 200
        assert "recforge_event_sync_failures_total 1.0" in httpx.get(server.url + "/metrics").text
        assert "no such table" in server.output()          # the cause is logged on the server only
