"""How a worker learns of new events without asking the store on every request: the shared
notice counter (event_notice) and ServingState.refresh_events, with real SQLite stores and two
states standing for two workers of one server (same model, same store)."""
from __future__ import annotations

import math

import pytest

from serving_helpers import make_artifact

pytest.importorskip("fastapi", reason='the serving tests need FastAPI: pip install "recforge[serve]"')


def test_notice_counts_announcements_seen_by_every_reader(tmp_path):
    from recforge.serving.event_notice import EventNotice

    url = f"sqlite:///{tmp_path / 'e.sqlite3'}"
    writer, reader, other = EventNotice(url), EventNotice(url), EventNotice(f"sqlite:///{tmp_path / 'f.sqlite3'}")
    try:
        assert writer.shared and reader.shared and writer.path == reader.path != other.path
        reader.changed()
        other.changed()
        assert not reader.changed()                    # nothing announced since
        writer.announce()
        writer.announce()
        assert reader.value() == writer.value() == 2
        assert reader.changed() and not reader.changed()   # one change seen once
        assert not other.changed()                     # another store's counter is untouched
    finally:
        for notice in (writer, reader, other):
            notice.close()


def test_without_a_shared_counter_every_request_reads_the_store(tmp_path, monkeypatch):
    from recforge.serving import event_notice

    monkeypatch.setattr(event_notice.tempfile, "gettempdir", lambda: str(tmp_path / "missing" / "dir"))
    notice = event_notice.EventNotice(f"sqlite:///{tmp_path / 'e.sqlite3'}")
    assert not notice.shared
    assert notice.changed() and notice.changed()
    notice.announce()                                   # harmless
    notice.close()


def two_workers(tmp_path, poll_seconds):
    from recforge.serving.config import ServeConfig
    from recforge.serving.state import ServingState

    folder = make_artifact(tmp_path / "m")
    config = ServeConfig(model_path=str(folder), events_url=f"sqlite:///{tmp_path / 'events.sqlite3'}",
                         partial_fit_events=0, partial_fit_seconds=0, reload_poll_seconds=0,
                         events_poll_seconds=poll_seconds).validated()
    return ServingState.start(config), ServingState.start(config)


def test_events_stored_by_one_worker_are_in_the_next_request_of_another(tmp_path):
    a, b = two_workers(tmp_path, poll_seconds=3600.0)     # only the notice can tell b
    try:
        assert b.live.pending("1000", 0) == []
        ids = a.store.append([("1000", "5003", 2.0, 1), ("424242", "5004", 1.0, 2)])
        a.events_stored()
        assert a.live.pending("1000", 0) == [("5003", 2.0)]
        b.refresh_events()
        assert b.live.pending("1000", 0) == [("5003", 2.0)]
        assert b.live.pending("424242", 0) == [("5004", 1.0)]
        assert b.live.last_id == ids[-1]
    finally:
        a.stop()
        b.stop()


def test_a_request_with_nothing_new_reads_nothing_and_outside_writers_wait_for_the_poll(tmp_path):
    a, b = two_workers(tmp_path, poll_seconds=3600.0)
    reads = []
    original = b.live.sync
    b.live.sync = lambda: reads.append(1) or original()
    try:
        for _ in range(50):
            b.refresh_events()
        assert reads == []                                  # no query per request
        a.store.append([("1001", "5001", 1.0, 1)])          # written without an announcement
        b.refresh_events()
        assert b.live.pending("1001", 0) == []              # not read before the poll is due
        b._next_poll = 0.0                                  # the poll interval has passed
        b.refresh_events()
        assert reads == [1] and b.live.pending("1001", 0) == [("5001", 1.0)]
    finally:
        a.stop()
        b.stop()


def test_a_restarted_worker_reads_every_stored_event_back(tmp_path):
    a, b = two_workers(tmp_path, poll_seconds=0.0)
    a.store.append([("1002", "5005", 1.0, 1), ("1002", "5006", 3.0, 2)])
    a.events_stored()
    a.stop()
    b.stop()
    from recforge.serving.config import ServeConfig
    from recforge.serving.state import ServingState

    restarted = ServingState.start(ServeConfig(model_path=str(tmp_path / "m"),
                                               events_url=f"sqlite:///{tmp_path / 'events.sqlite3'}",
                                               partial_fit_events=0, partial_fit_seconds=0, reload_poll_seconds=0))
    try:
        assert restarted.live.pending("1002", 0) == [("5005", 1.0), ("5006", 3.0)]
    finally:
        restarted.stop()


def test_json_answers_write_non_finite_scores_as_null_and_refuse_nan_elsewhere():
    import json

    import numpy as np

    from recforge.serving.encoding import json_response
    from recforge.serving.service import _scored

    class Served:
        item_ids = [10, 11, 12]

    entries = _scored(Served, np.array([2, 0, -1, 1]), np.array([0.5, np.nan, -np.inf, np.inf], np.float32))
    assert entries == [{"item_id": 12, "score": 0.5}, {"item_id": 10, "score": None}, {"item_id": 11, "score": None}]
    response = json_response({"items": entries, "user_id": "é"})
    assert response.media_type == "application/json"
    assert json.loads(response.body) == {"items": entries, "user_id": "é"}
    with pytest.raises(ValueError):
        json_response({"score": math.nan})
