"""The events of the store, kept in memory per user and synced with the store on demand.

Each worker process reads every event once (``sync`` asks the store only for ids above the
last one seen: one indexed query, empty most of the time), so an event acknowledged by any
worker is the next request's history on every worker. Memory grows with the number of events
(a few dozen bytes each); retrain and restart to fold them into a new artifact.
"""
from __future__ import annotations

import threading
from collections import defaultdict

from recforge.serving.event_store import EventStore, StoredEvent, iter_all


class LiveEvents:
    """Per-user lists of (event id, item id, value), in id order."""

    def __init__(self, store: EventStore):
        self.store = store
        self.last_id = 0
        self._by_user: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
        self._all: list[StoredEvent] = []
        self._lock = threading.Lock()

    def sync(self) -> int:
        """Read the events the store gained since the last sync; returns how many."""
        with self._lock:
            added = 0
            for event in iter_all(self.store, self.last_id):
                self._by_user[event.user_id].append((event.id, event.item_id, event.value))
                self._all.append(event)
                self.last_id = event.id
                added += 1
            return added

    def pending(self, user_id: str, after_id: int) -> list[tuple[str, float]]:
        """(item id, value) of ``user_id``'s events with id > after_id, oldest first."""
        events = self._by_user.get(user_id)
        if not events:
            return []
        return [(item, value) for event_id, item, value in events if event_id > after_id]

    def after(self, after_id: int) -> list[StoredEvent]:
        """Every event with id > after_id, in id order."""
        with self._lock:
            start = _first_above(self._all, after_id)
            return self._all[start:]

    def count_after(self, after_id: int) -> int:
        with self._lock:
            return len(self._all) - _first_above(self._all, after_id)


def _first_above(events: list[StoredEvent], after_id: int) -> int:
    lo, hi = 0, len(events)
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid].id <= after_id:
            lo = mid + 1
        else:
            hi = mid
    return lo
