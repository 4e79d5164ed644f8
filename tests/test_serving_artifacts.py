"""Served artifacts: the manifest, refusal of damaged or tampered folders (in process and by
`recforge serve`), and hot reload of a new version under a stream of requests."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from serving_helpers import Server, httpx, make_artifact, run_serve, small_interactions


def test_manifest_lists_every_file_version_fingerprint_and_metrics(tmp_path):
    import hashlib

    from recforge import __version__
    from recforge.serving import load_artifact

    folder = make_artifact(tmp_path / "m", metrics={"recall@20": 0.5})
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["recforge_version"] == __version__ and manifest["model"] == "ItemKNN"
    assert manifest["metrics"] == {"recall@20": 0.5}
    assert set(manifest["files"]) == {"model.json", "arrays.npz"}
    for name, spec in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert spec == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    inter = small_interactions(0)
    assert manifest["training_data"]["n_interactions"] == len(inter.users)
    assert manifest["training_data"]["n_users"] == 60 and manifest["training_data"]["n_items"] == 40
    other = make_artifact(tmp_path / "other", seed=1)
    fp = json.loads((other / "manifest.json").read_text())["training_data"]["sha256"]
    assert fp != manifest["training_data"]["sha256"]            # other data, other fingerprint
    again = make_artifact(tmp_path / "again", seed=0)
    assert json.loads((again / "manifest.json").read_text())["training_data"] == manifest["training_data"]
    assert load_artifact(folder).version == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()[:16]


def flip_byte(file, offset=-100):
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))


def tamper_params(folder):
    doc = json.loads((folder / "model.json").read_text())
    doc["params"]["k"] = 3
    (folder / "model.json").write_text(json.dumps(doc))


def newer_library(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["recforge_version"] = "99.0.0"
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, words", [
    (lambda f: flip_byte(f / "arrays.npz"), ["arrays.npz", "checksum"]),
    (tamper_params, ["model.json", "checksum"]),
    (lambda f: (f / "manifest.json").unlink(), ["manifest.json"]),
    (lambda f: (f / "extra.bin").write_bytes(b"x"), ["extra.bin"]),
    (lambda f: (f / "arrays.npz").unlink(), ["arrays.npz"]),
    (newer_library, ["99.0.0", "upgrade"]),
])
def test_damaged_artifacts_are_refused(tmp_path, damage, words):
    from recforge.models import ArtifactError
    from recforge.serving import load_artifact

    folder = make_artifact(tmp_path / "m")
    damage(folder)
    with pytest.raises(ArtifactError) as caught:
        load_artifact(folder)
    for word in words:
        assert word in str(caught.value)


def test_serve_refuses_a_tampered_artifact_and_exits(tmp_path):
    folder = make_artifact(tmp_path / "m")
    flip_byte(folder / "arrays.npz")
    done = run_serve(folder)
    assert done.returncode != 0
    assert "refusing to serve" in done.stderr and "checksum" in done.stderr
    assert "Traceback" not in done.stderr


def test_hot_reload_under_a_request_stream_drops_nothing(tmp_path):
    from recforge.models import ItemKNN
    from recforge.serving import save_artifact

    folder = make_artifact(tmp_path / "m", k=10)
    with Server(folder, "--reload-poll-seconds", "0.2") as server:
        first = httpx.get(server.url + "/readyz").json()["model_version"]
        failures, versions, stop = [], set(), threading.Event()

        def hammer(offset):
            with httpx.Client(base_url=server.url, timeout=30.0) as client:
                k = 0
                while not stop.is_set():
                    user = 1000 + (k + offset) % 60
                    k += 1
                    try:
                        r = client.get(f"/v1/recommendations/{user}", params={"n": 5})
                        if r.status_code != 200 or len(r.json()["items"]) != 5:
                            failures.append((r.status_code, r.text))
                        else:
                            versions.add(r.json()["model_version"])
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=hammer, args=(s * 17,)) for s in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        inter = small_interactions(0)
        save_artifact(ItemKNN(k=3, progress=False).fit(inter), folder, training_data=inter)   # in place
        deadline = time.monotonic() + 30
        second = first
        while second == first and time.monotonic() < deadline:
            time.sleep(0.1)
            second = httpx.get(server.url + "/readyz").json()["model_version"]
        time.sleep(0.5)
        # a tampered third version is refused; the second keeps serving
        flip_byte(folder / "arrays.npz")
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["created_at"] = "tampered"
        (folder / "manifest.json").write_text(json.dumps(manifest))
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        assert second != first, server.output()
        assert failures == []
        assert versions == {first, second}
        assert httpx.get(server.url + "/readyz").json()["model_version"] == second
        text = httpx.get(server.url + "/metrics").text
        assert 'recforge_model_swaps_total{reason="refused"} 1.0' in text
        assert 'recforge_model_swaps_total{reason="reload"} 1.0' in text
        # the reloaded model (k=3) answers as the same model fitted here
        reference = ItemKNN(k=3, progress=False).fit(inter)
        items, scores = reference.recommend([1005], 5, ids=True)
        body = httpx.get(server.url + "/v1/recommendations/1005", params={"n": 5}).json()
        assert [e["item_id"] for e in body["items"]] == items[0].tolist()
        assert np.allclose([e["score"] for e in body["items"]], scores[0], rtol=1e-5)


def test_importing_serving_pulls_in_no_web_or_sql_library():
    import subprocess
    import sys

    code = ("import sys, recforge, recforge.models, recforge.serving, recforge.data.sql; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'sqlalchemy', 'prometheus_client', 'pydantic') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_help_lists_the_options():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "recforge", "serve", "--help"], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    for option in ("--host", "--port", "--workers", "--events-url", "--max-n", "--import"):
        assert option in done.stdout
