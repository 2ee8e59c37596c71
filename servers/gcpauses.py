"""Garbage-collector pauses, timed inside the server: every collection, by generation.

CPython stops the event loop for every collection; a full (generation 2) collection walks
every tracked container, so a store of millions of sessions made of dicts and tuples can
stall every request for hundreds of milliseconds. `gc.callbacks` brackets each collection;
the pauses go to /metrics as a histogram per generation, with the longest so far, and the
longest so far while serving (outside the population experiment's bulk seeding, which grows
a store faster than any service does).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

# 10 us (a young collection) to 10 s (a full one over tens of millions of objects).
PAUSE_BUCKETS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
GENERATIONS = (0, 1, 2)


class GcPauses:
    """Times every collection of this process while installed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        histogram = Histogram("authscale_gc_pause_seconds",
                              "Garbage-collector pauses of the server process, by generation.",
                              ["generation"], buckets=PAUSE_BUCKETS, registry=registry)
        longest = Gauge("authscale_gc_pause_longest_seconds",
                        "The longest garbage-collector pause since start, by generation.",
                        ["generation"], registry=registry)
        in_service = Gauge("authscale_gc_pause_longest_in_service_seconds",
                           "The longest garbage-collector pause since start outside "
                           "POST /admin/seed (while serving), by generation.",
                           ["generation"], registry=registry)
        # Children bound once: the callback runs at every collection.
        self._pauses = [histogram.labels(str(g)) for g in GENERATIONS]
        self._longest = [longest.labels(str(g)) for g in GENERATIONS]
        self._longest_seconds = [0.0 for _ in GENERATIONS]
        self._in_service = [in_service.labels(str(g)) for g in GENERATIONS]
        self._in_service_seconds = [0.0 for _ in GENERATIONS]
        self._started_ns = 0
        # Inside an /admin/seed: its pauses count as seeding's, not the service's.
        self.seeding = 0

    def on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            return
        seconds = (time.perf_counter_ns() - self._started_ns) / 1e9
        generation = info["generation"]
        self._pauses[generation].observe(seconds)
        if seconds > self._longest_seconds[generation]:
            self._longest_seconds[generation] = seconds
            self._longest[generation].set(seconds)
        if not self.seeding and seconds > self._in_service_seconds[generation]:
            self._in_service_seconds[generation] = seconds
            self._in_service[generation].set(seconds)

    def install(self) -> None:
        gc.callbacks.append(self.on_collection)

    def remove(self) -> None:
        if self.on_collection in gc.callbacks:
            gc.callbacks.remove(self.on_collection)
