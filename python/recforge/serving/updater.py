"""Background ``partial_fit``: fold new events into a copy of the model, then hot-swap it.

Runs for models that have ``partial_fit`` (ItemKNN, UserKNN) when ``partial_fit_events`` new
events have arrived, or ``partial_fit_seconds`` after the oldest unfitted one. The copy is
updated off the request path; requests keep using the current model until the swap, after
which the folded-in events are part of the model and no longer added as history.
"""
from __future__ import annotations

import copy
import logging
import threading
import time

import numpy as np

from recforge.serving.live_events import LiveEvents
from recforge.serving.model_holder import ModelHolder, ServedModel

log = logging.getLogger("recforge.serve")


def fold_in(served: ServedModel, events: list) -> ServedModel:
    """A new ServedModel: a copy of ``served.model`` updated by ``partial_fit(events)``."""
    from recforge.data import Interactions

    convert = int if served.integer_ids else str
    users = np.asarray([convert(e.user_id) for e in events], dtype=np.int64 if served.integer_ids else object)
    items = np.asarray([convert(e.item_id) for e in events], dtype=np.int64 if served.integer_ids else object)
    values = np.asarray([e.value for e in events], dtype=np.float32)
    model = copy.deepcopy(served.model)
    model.partial_fit(Interactions.from_arrays(users, items, values))
    base = served.version.split("+")[0]
    version = f"{base}+{events[-1].id}"
    return ServedModel.of(model, version, served.manifest, events[-1].id, getattr(model, "num_threads", 1))


class PartialFitter:
    """The daemon thread that decides when to fold events in (see the module docstring)."""

    def __init__(self, holder: ModelHolder, live: LiveEvents, every_events: int, every_seconds: float,
                 on_fit=None):
        self.holder, self.live = holder, live
        self.every_events, self.every_seconds = int(every_events), float(every_seconds)
        self.on_fit = on_fit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._first_pending_at: float | None = None

    def nudge(self) -> None:
        """New events arrived: check the threshold now."""
        self._wake.set()

    def due(self, pending: int, now: float) -> bool:
        if pending == 0:
            self._first_pending_at = None
            return False
        if self._first_pending_at is None:
            self._first_pending_at = now
        if self.every_events and pending >= self.every_events:
            return True
        return bool(self.every_seconds) and now - self._first_pending_at >= self.every_seconds

    def step(self) -> bool:
        served = self.holder.current
        if not served.supports_partial_fit:
            return False
        self.live.sync()
        if not self.due(self.live.count_after(served.events_upto), time.monotonic()):
            return False
        events = self.live.after(served.events_upto)
        updated = fold_in(served, events)
        if self.holder.swap(updated, expected=served, reason="partial_fit"):
            self._first_pending_at = None
            if self.on_fit is not None:
                self.on_fit(len(events))
            return True
        return False

    def start(self) -> threading.Thread | None:
        if not (self.every_events or self.every_seconds):
            return None

        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(min(1.0, self.every_seconds or 1.0))
                self._wake.clear()
                try:
                    self.step()
                except Exception:
                    log.exception("partial_fit in the background failed; the current model keeps serving")
                    time.sleep(5.0)

        thread = threading.Thread(target=loop, name="recforge-partial-fit", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
