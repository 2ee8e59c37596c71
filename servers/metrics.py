"""Prometheus metrics of one server, in its own registry (tests run several apps at once)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest

from servers.gcpauses import GcPauses

# Auth costs range from ~1 us (a dict lookup) to ~1 ms (an RSA verify on a busy core).
AUTH_BUCKETS = (5e-6, 1e-5, 2e-5, 3e-5, 5e-5, 7.5e-5, 1e-4, 1.5e-4, 2e-4, 3e-4, 5e-4,
                7.5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0)
OUTCOMES = ("ok", "unauthorized", "unavailable")


class Metrics:
    def __init__(self, variant: str, server_state: bool) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._auth = Histogram("authscale_auth_seconds",
                               "Time spent authenticating a request, by outcome.",
                               ["outcome"], buckets=AUTH_BUCKETS, registry=self.registry)
        # Children bound once: a labels() lookup per request is measurable at this scale.
        self.auth = {outcome: self._auth.labels(outcome) for outcome in OUTCOMES}
        self._requests = Counter("authscale_requests", "HTTP requests answered.",
                                 ["route", "status"], registry=self.registry)
        self._request_children: dict[tuple[str, int], Counter] = {}
        self.live_sessions = (
            Gauge("authscale_live_sessions",
                  f"Live server-side sessions (or denylisted token ids) of {variant}.",
                  registry=self.registry)
            if server_state else None)
        self.gc_pauses = GcPauses(self.registry)

    def count_request(self, route: str, status: int) -> None:
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self._requests.labels(
                route, str(status))
        child.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
