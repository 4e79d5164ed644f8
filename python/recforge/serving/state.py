"""Everything one worker process holds: config, model holder, event store, live events, metrics."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from recforge.serving.config import ServeConfig
from recforge.serving.event_notice import EventNotice
from recforge.serving.event_store import EventStore, open_event_store
from recforge.serving.live_events import LiveEvents
from recforge.serving.metrics import ServerMetrics
from recforge.serving.model_holder import ModelHolder
from recforge.serving.updater import PartialFitter

log = logging.getLogger("recforge.serve")


@dataclass
class ServingState:
    config: ServeConfig
    holder: ModelHolder
    store: EventStore
    live: LiveEvents
    metrics: ServerMetrics
    fitter: PartialFitter
    started_at: float
    notice: EventNotice
    _last_sync_warning: float = -1e9
    _next_poll: float = 0.0

    @classmethod
    def start(cls, config: ServeConfig) -> "ServingState":
        """Load and verify the model, open the event store, read its events, start the threads."""
        config.import_plugins()
        metrics = ServerMetrics()
        holder = ModelHolder(config.model_path, config.kernel_threads,
                             on_swap=lambda served, reason: metrics.model_swapped(served.name, served.version, reason))
        store = open_event_store(config.resolved_events_url)
        notice = EventNotice(config.resolved_events_url)
        notice.changed()
        live = LiveEvents(store)
        live.sync()
        fitter = PartialFitter(holder, live, config.partial_fit_events, config.partial_fit_seconds,
                               on_fit=lambda count: log.warning("partial_fit folded in %d events", count))
        state = cls(config, holder, store, live, metrics, fitter, time.time(), notice,
                    _next_poll=time.monotonic() + config.events_poll_seconds)
        holder.watch(config.reload_poll_seconds)
        fitter.start()
        return state

    def refresh_events(self) -> None:
        """Read the events stored since the last read, when there can be any: a worker of this
        host announced some (``EventNotice``), or ``events_poll_seconds`` passed (writers
        elsewhere). Nothing new costs no query. If the store fails, answer from the events read
        so far (recommendations keep working while the store is down; /readyz reports it)."""
        now = time.monotonic()
        if not self.notice.changed() and now < self._next_poll:
            return
        self._next_poll = now + self.config.events_poll_seconds
        self.sync_events()

    def events_stored(self) -> None:
        """This worker committed events: announce them to every worker, then read them."""
        self.notice.announce()
        self.notice.changed()          # this worker reads them now
        self.sync_events()

    def sync_events(self) -> None:
        try:
            self.live.sync()
        except Exception as exc:
            self.metrics.event_sync_failures.inc()
            now = time.monotonic()
            if now - self._last_sync_warning > 10.0:
                self._last_sync_warning = now
                log.warning("cannot read new events from the store (%s); serving without them", exc)

    def stop(self) -> None:
        self.holder.stop()
        self.fitter.stop()
        self.store.close()
        self.notice.close()
