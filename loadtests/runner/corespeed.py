"""How steady a core's speed is: one fixed piece of pure-Python work, timed over and over on
that core while nothing else of ours runs there.

This machine's vCPUs share their host with other tenants: the same loop can take twice as
long from one tenth of a second to the next, with no steal in /proc/stat to say so. A
flat-out (closed-loop) window averages those stretches away, while a fixed rate held to a
p99 bound must ride out the slowest of them, so the calibration records, beside each
capacity, how steady the server's core was just before it was measured. No library times a
core's speed this way; it is a few lines.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

STRETCH_S = 0.1


def _unit() -> int:
    """The fixed work: about 0.2 ms of bytecode on a server core here."""
    total = 0
    for i in range(2000):
        total += i * i
    return total


def stretch_counts(cpu: int, seconds: float) -> list[int]:
    """Work units done in each 100 ms stretch on `cpu`, this thread pinned there meanwhile."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        counts: list[int] = []
        end = time.perf_counter() + seconds
        while (start := time.perf_counter()) < end:
            done = 0
            while time.perf_counter() - start < STRETCH_S:
                _unit()
                done += 1
            counts.append(done)
    finally:
        os.sched_setaffinity(0, before)
    return counts


def steadiness(counts: list[int], off_by: float) -> dict[str, Any]:
    """The core's speed over its stretches, relative to the median stretch: the slowest,
    the fastest, and the share of stretches more than `off_by` (a fraction) off it either
    way."""
    median = statistics.median(counts)
    return {"stretch_s": STRETCH_S, "stretches": len(counts), "off_by": off_by,
            "units_per_stretch_median": median,
            "slowest_over_median": round(min(counts) / median, 3),
            "fastest_over_median": round(max(counts) / median, 3),
            "off_share": round(sum(abs(c / median - 1) > off_by for c in counts)
                               / len(counts), 3)}
