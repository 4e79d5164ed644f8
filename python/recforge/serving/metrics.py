"""Prometheus metrics (prometheus-client), exposed at ``GET /metrics``.

* ``recforge_requests_total{route, method, status}`` and
  ``recforge_request_duration_seconds{route, method}`` (histogram) for every request;
* ``recforge_model_info{model, version}`` = 1 for the model being served;
* ``recforge_model_swaps_total{reason}`` (load, reload, partial_fit) and refused versions;
* ``recforge_events_ingested_total`` — events acknowledged (durably stored);
* ``recforge_event_sync_failures_total`` — requests answered while the store could not be read.

With several workers ``recforge serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` and every worker
writes there, so a scrape of any worker reports the whole server.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    """The metric objects of one process (created once per app)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = None if self.multiprocess else CollectorRegistry()
        kw = {"registry": registry} if registry is not None else {}
        self.registry = registry
        self.requests = Counter("recforge_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], **kw)
        self.latency = Histogram("recforge_request_duration_seconds", "request latency by route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, **kw)
        gauge_kw = dict(kw, multiprocess_mode="liveall") if self.multiprocess else kw
        self.model_info = Gauge("recforge_model_info", "the model being served (value 1)",
                                ["model", "version"], **gauge_kw)
        self.swaps = Counter("recforge_model_swaps", "models put into service, by reason", ["reason"], **kw)
        self.events = Counter("recforge_events_ingested", "events acknowledged (durably stored)", **kw)
        self.event_sync_failures = Counter("recforge_event_sync_failures",
                                           "requests answered without reading new events (store failing)", **kw)
        self._shown: tuple[str, str] | None = None
        self._request_children: dict = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one request (the labelled children are looked up once per label set)."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def model_swapped(self, name: str, version: str, reason: str) -> None:
        self.swaps.labels(reason).inc()
        if reason == "refused":
            return
        if self._shown is not None:
            self.model_info.remove(*self._shown)
        self._shown = (name, version)
        self.model_info.labels(name, version).set(1)

    def exposition(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
