"""`recforge serve` end to end: a real uvicorn server on 127.0.0.1, spoken to over HTTP with httpx.

The reference for every list is the saved model itself, loaded in this process and asked
directly (`recforge.load(path).recommend(..., ids=True)`): the server must map ids, history and
filters to exactly that call. Error paths are checked for their status, a JSON body naming the
problem, and the absence of any traceback.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from serving_helpers import Server, httpx, make_artifact

N = 5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = make_artifact(tmp_path_factory.mktemp("serving") / "model")
    with Server(folder, "--max-n", "50", "--max-body-bytes", "20000", "--partial-fit-events", "0",
                "--partial-fit-seconds", "0") as server:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            yield server, client, folder


@pytest.fixture(scope="module")
def reference(served):
    import recforge

    return recforge.load(served[2])


def pairs(body):
    return [(entry["item_id"], pytest.approx(entry["score"], rel=1e-5)) for entry in body["items"]]


def expected(items, scores):
    return [(int(i), pytest.approx(float(s), rel=1e-5)) for i, s in zip(items, scores) if i != -1]


def assert_problem(response, status, *words):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    for word in words:
        assert word in text, text


def test_health_ready_docs_and_openapi(served):
    _, client, _ = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "ItemKNN" and len(ready["model_version"]) == 16
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/recommendations/{user_id}", "/v1/recommendations", "/v1/recommendations:batch",
                 "/v1/similar-items/{item_id}", "/v1/events", "/healthz", "/readyz"):
        assert path in paths


def test_known_user_matches_the_model(served, reference):
    _, client, _ = served
    for user in (1000, 1007, 1059):
        body = client.get(f"/v1/recommendations/{user}", params={"n": N}).json()
        items, scores = reference.recommend([user], N, ids=True)
        assert body["user_id"] == user
        assert pairs(body) == expected(items[0], scores[0])
        seen = set(reference.item_ids_[reference.user_items_[reference.user_ids_.code(user)].indices].tolist())
        assert not seen & {entry["item_id"] for entry in body["items"]}


def test_exclude_seen_false_and_filter(served, reference):
    _, client, _ = served
    body = client.get("/v1/recommendations/1003", params={"n": N, "exclude_seen": "false"}).json()
    items, scores = reference.recommend([1003], N, exclude_seen=False, ids=True)
    assert pairs(body) == expected(items[0], scores[0])
    top = [entry["item_id"] for entry in client.get("/v1/recommendations/1003", params={"n": N}).json()["items"]]
    blocked = top[:2]
    body = client.get("/v1/recommendations/1003", params={"n": N, "filter": f"{blocked[0]},{blocked[1]},777777"}).json()
    items, scores = reference.recommend([1003], N, filter_items=blocked, ids=True)
    assert pairs(body) == expected(items[0], scores[0])
    assert not set(blocked) & {entry["item_id"] for entry in body["items"]}


def test_batch_equals_single_requests(served):
    _, client, _ = served
    users = [1002, 1010, 1002, 1033]
    body = client.post("/v1/recommendations:batch", json={"user_ids": users, "n": N}).json()
    assert [r["user_id"] for r in body["results"]] == users
    for result, user in zip(body["results"], users):
        single = client.get(f"/v1/recommendations/{user}", params={"n": N}).json()
        assert result["items"] == single["items"]


def test_similar_items_match_the_model(served, reference):
    _, client, _ = served
    body = client.get("/v1/similar-items/5003", params={"n": 4}).json()
    items, scores = reference.similar_items([5003], 4, ids=True)
    assert body["item_id"] == 5003
    assert pairs(body) == expected(items[0], scores[0])


def test_adhoc_history_for_an_anonymous_visitor(served, reference):
    import scipy.sparse as sp

    _, client, _ = served
    history = [{"item_id": 5001, "value": 1.0}, {"item_id": 5004, "value": 2.0}, {"item_id": 999999}]
    body = client.post("/v1/recommendations", json={"history": history, "n": N}).json()
    assert body["user_id"] is None
    codes = reference.item_ids_.codes(np.array([5001, 5004]))
    H = sp.csr_matrix((np.array([1.0, 2.0], np.float32), (np.zeros(2, int), codes)), shape=(1, reference.n_items_))
    items, scores = reference.recommend(np.array([-1]), N, history=H)
    ids = reference.item_ids_.to_numpy()
    assert pairs(body) == [(int(ids[i]), pytest.approx(float(s), rel=1e-5)) for i, s in zip(items[0], scores[0])
                           if i >= 0]
    assert not {5001, 5004} & {entry["item_id"] for entry in body["items"]}


def test_events_change_the_next_recommendation(served, reference):
    import scipy.sparse as sp

    _, client, _ = served
    user = 1020
    before = client.get(f"/v1/recommendations/{user}", params={"n": N}).json()
    first = before["items"][0]["item_id"]
    answer = client.post("/v1/events", json={"events": [{"user_id": user, "item_id": first, "value": 3.0}]})
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    after = client.get(f"/v1/recommendations/{user}", params={"n": N}).json()
    assert first not in {entry["item_id"] for entry in after["items"]}
    code = reference.user_ids_.code(user)
    H = reference.user_items_[[code]].tolil()
    H[0, reference.item_ids_.code(first)] += 3.0
    items, scores = reference.recommend([code], N, history=sp.csr_matrix(H))
    ids = reference.item_ids_.to_numpy()
    assert pairs(after) == [(int(ids[i]), pytest.approx(float(s), rel=1e-5)) for i, s in zip(items[0], scores[0])]


def test_a_new_user_is_known_after_an_event(served):
    _, client, _ = served
    assert_problem(client.get("/v1/recommendations/424242"), 404, "424242", "unknown_user")
    client.post("/v1/events", json={"events": [{"user_id": 424242, "item_id": 5006},
                                               {"user_id": 424242, "item_id": 5007, "timestamp": 1700000000}]})
    body = client.get("/v1/recommendations/424242", params={"n": N}).json()
    anonymous = client.post("/v1/recommendations", json={"history": [{"item_id": 5006}, {"item_id": 5007}],
                                                         "n": N}).json()
    assert body["items"] == anonymous["items"] and len(body["items"]) == N


def test_unknown_ids_are_404_naming_them(served):
    _, client, _ = served
    assert_problem(client.get("/v1/recommendations/nobody"), 404, "nobody")
    assert_problem(client.get("/v1/similar-items/123456789"), 404, "123456789", "unknown_item")
    response = client.post("/v1/recommendations:batch", json={"user_ids": [1000, 31337, 1001, 31338]})
    assert_problem(response, 404, "31337", "31338")
    assert response.json()["ids"] == [31337, 31338]


@pytest.mark.parametrize("params", [{"n": 0}, {"n": -3}, {"n": "ten"}, {"n": 51}, {"exclude_seen": "maybe"}])
def test_bad_query_parameters_are_422(served, params):
    _, client, _ = served
    assert_problem(client.get("/v1/recommendations/1000", params=params), 422)


@pytest.mark.parametrize("body", [
    {"user_ids": []}, {"user_ids": [1000], "n": 51}, {"user_ids": [1000], "colour": "red"}, {"user_ids": "1000"},
])
def test_bad_batch_bodies_are_422(served, body):
    _, client, _ = served
    assert_problem(client.post("/v1/recommendations:batch", json=body), 422)


@pytest.mark.parametrize("body", [
    {"events": []}, {"events": [{"user_id": 1000}]}, {"events": [{"user_id": 1000, "item_id": 5000, "value": "x"}]},
    {"events": [{"user_id": "alice", "item_id": 5000}]}, {"events": [{"user_id": 1000, "item_id": 5000,
                                                                      "timestamp": -5}]},
])
def test_bad_events_are_422_and_not_stored(served, body):
    _, client, _ = served
    before = client.get("/readyz").json()["events"]
    assert_problem(client.post("/v1/events", json=body), 422)
    assert client.get("/readyz").json()["events"] == before


def test_malformed_json_is_422_and_oversized_bodies_413(served):
    _, client, _ = served
    response = client.post("/v1/recommendations", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422)
    big = {"history": [{"item_id": 5000 + (k % 40)} for k in range(2000)]}
    assert len(json.dumps(big)) > 20000
    assert_problem(client.post("/v1/recommendations", json=big), 413, "20000")

    def chunks():                 # no Content-Length: the limit is counted as the body streams
        payload = json.dumps(big).encode()
        for start in range(0, len(payload), 4096):
            yield payload[start:start + 4096]

    assert_problem(client.post("/v1/recommendations", content=chunks(),
                               headers={"content-type": "application/json"}), 413)


def test_unknown_route_and_method(served):
    _, client, _ = served
    assert_problem(client.get("/v2/nothing"), 404)
    assert_problem(client.delete("/v1/events"), 405)


def test_metrics_count_requests_events_and_the_model(served):
    _, client, _ = served
    client.get("/v1/recommendations/1000")
    client.get("/v1/recommendations/not-a-user")
    client.post("/v1/events", json={"events": [{"user_id": 1001, "item_id": 5001}]})
    text = client.get("/metrics").text
    assert 'recforge_requests_total{method="GET",route="/v1/recommendations/{user_id}",status="200"}' in text
    assert 'recforge_requests_total{method="GET",route="/v1/recommendations/{user_id}",status="404"}' in text
    assert "recforge_request_duration_seconds_bucket" in text
    version = client.get("/readyz").json()["model_version"]
    assert f'recforge_model_info{{model="ItemKNN",version="{version}"}} 1.0' in text
    ingested = [line for line in text.splitlines() if line.startswith("recforge_events_ingested_total")]
    assert ingested and float(ingested[0].split()[-1]) >= 1
    assert "not-a-user" not in text           # ids never become label values


def test_bad_query_parameters_name_the_parameter_in_a_json_body(served):
    _, client, _ = served
    for params, name in (({"n": "ten"}, "n"), ({"n": 51}, "n"), ({"exclude_seen": "maybe"}, "exclude_seen")):
        response = client.get("/v1/recommendations/1000", params=params)
        assert_problem(response, 422)
        assert [error["loc"] for error in response.json()["detail"]] == [["query", name]]


def test_repeated_and_comma_separated_filters_and_unknown_parameters(served, reference):
    _, client, _ = served
    top = [entry["item_id"] for entry in client.get("/v1/recommendations/1011", params={"n": N}).json()["items"]]
    params = [("n", N), ("filter", f"{top[0]}"), ("filter", f"{top[1]}, {top[2]}"), ("colour", "red")]
    response = client.get("/v1/recommendations/1011", params=params)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    items, scores = reference.recommend([1011], N, filter_items=top[:3], ids=True)
    assert pairs(response.json()) == expected(items[0], scores[0])
    default = client.get("/v1/recommendations/1011").json()           # no query: n=10, exclude_seen
    items, _ = reference.recommend([1011], 10, ids=True)
    assert [entry["item_id"] for entry in default["items"]] == [int(i) for i in items[0] if i != -1]


def test_openapi_documents_the_get_parameters_and_answer(served):
    _, client, _ = served
    operation = client.get("/openapi.json").json()["paths"]["/v1/recommendations/{user_id}"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"user_id", "n", "exclude_seen", "filter"}
    assert params["user_id"]["in"] == "path" and params["n"]["schema"]["maximum"] == 50
    assert "Recommendations" in json.dumps(operation["responses"]["200"])
