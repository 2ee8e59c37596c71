"""Scaling out without sticky routing: the failure rate when each request goes to a random
replica. In-memory sessions fail there; Redis-backed sessions and tokens do not."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import (
    NO,
    ONLY_WITHOUT_SHARED_STORE,
    YES,
    Evidence,
    fmt_items,
    not_measured,
    row,
)

AXIS = "scaling out without sticky routing"
# A variant failing more than this share of random-routed requests does not scale out.
FAILING = 0.05
# A shared store failing less than this share does.
WORKING = 0.01


def judge(e: Evidence) -> dict[str, Any]:
    rates = {v: f["replicas_random_failure_rate"] for v, f in e.figures.items()
             if f.get("replicas_random_failure_rate") is not None}
    sessions, tokens = e.variants.server_sessions, e.variants.stateless_tokens
    in_memory = [v for v in sessions if e.variants.facts[v]["state"] == "process"]
    shared_store = [v for v in sessions if e.variants.facts[v]["state"] == "redis"]
    memory = max((rates[v] for v in in_memory if v in rates), default=None)
    shared = max((rates[v] for v in shared_store if v in rates), default=None)
    token_rates = [rates[v] for v in tokens if v in rates]
    if memory is None or not token_rates:
        return not_measured(AXIS)
    holds = (ONLY_WITHOUT_SHARED_STORE if memory > FAILING and (shared is None or
                                                                shared < WORKING)
             else (YES if memory > FAILING else NO))
    return row(AXIS, holds,
               fmt_items([(v, r) for v, r in rates.items() if v in sessions], "{:.0%} failed"),
               fmt_items([(v, r) for v, r in rates.items() if v in tokens], "{:.0%} failed"),
               f"in-memory sessions fail {memory:.0%} of requests on random replicas"
               + (f"; Redis-backed sessions {shared:.0%}" if shared is not None else "")
               + f"; tokens {max(token_rates):.0%}")
