"""Service as live users grow: the population's duet windows as ratios, margins and trends
(analysis.growth), and the axis's rule (analysis.axes.growth), on synthetic windows whose
figures are worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from analysis.axes import growth as axis
from analysis.growth import margins, steps, trends
from analysis.variants import Variants


def window(variant: str, population: int, phase: str, ratio: float, *,
           fewest: int = 1000) -> dict[str, Any]:
    """One usable window whose b / a is `ratio` for its phase's figures."""
    row: dict[str, Any] = {
        "pair": variant, "population": population, "fewest": fewest, "phase": phase,
        "rate": 0.0 if phase == "flat" else 1000.0, "status": "ok", "a_errors": 0,
        "b_errors": 0, "core_busy": 0.99, "a_rps": 1000.0, "b_rps": 1000.0,
        "a_per_cpu_second": 10_000.0, "b_per_cpu_second": 10_000.0,
        "a_p99_us": 2000.0, "b_p99_us": 2000.0, "a_cpu_us_per_request": 100.0,
        "b_cpu_us_per_request": 100.0, "b_reads": 1200, "b_max_us": 5000.0,
        "a_gc_full": 0.0, "b_gc_full": 0.0, "b_gc_full_ms": 0.0,
        "b_service_longest_ms": 5.0}
    if phase == "flat":
        row["b_per_cpu_second"] *= ratio
    else:
        row["b_p99_us"] *= ratio
        row["b_cpu_us_per_request"] *= ratio
    return row


def arm(variant: str, ratios: dict[int, tuple[list[float], list[float]]]) -> list[dict[str, Any]]:
    """Windows of one variant: per step, the capacity ratios (flat) and p99 ratios (rate)."""
    return [window(variant, size, phase, r) for size, (flat, rate) in ratios.items()
            for phase, values in (("flat", flat), ("rate", rate)) for r in values]


STEADY = [0.98, 1.0, 1.02]


def test_each_step_is_the_geometric_mean_of_its_windows_with_a_t_interval() -> None:
    frame = pd.DataFrame(arm("session-memory", {1000: (STEADY, STEADY),
                                                1_000_000: ([0.8, 0.9, 1.0], STEADY)}))
    found = {(r["population"], r["figure"]): r for r in steps(frame)}
    grown = found[(1_000_000, "capacity")]
    logs = [math.log(x) for x in (0.8, 0.9, 1.0)]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    assert grown["ratio"] == pytest.approx(math.exp(mean))
    assert grown["ratio_low"] == pytest.approx(math.exp(mean - 4.303 * sd / math.sqrt(3)))
    assert grown["n"] == 3 and grown["windows"] == 3 and grown["left_out"] == 0
    assert found[(1000, "p99")]["ratio"] == pytest.approx(1.0, abs=1e-3)
    # A window the servers did not saturate (flat out, core under 90%) is left out.
    idle = frame.copy()
    idle.loc[0, "core_busy"] = 0.5
    first = next(r for r in steps(idle) if r["population"] == 1000 and r["figure"] == "capacity")
    assert (first["n"], first["left_out"]) == (2, 1)


def test_the_margin_is_the_widest_a_a_interval_and_says_when_noise_hides_everything() -> None:
    quiet = steps(pd.DataFrame(arm("session-memory", {1000: (STEADY, STEADY)})))
    found = margins(quiet)
    # The A/A interval here is narrower than the floors: the floors stand.
    assert found["capacity"]["margin"] == 0.10 and found["p99"]["margin"] == 0.25
    assert found["capacity"]["trusted"] and 0 < found["capacity"]["aa"] < 0.10
    noisy = steps(pd.DataFrame(arm("session-memory", {1000: ([0.9, 1.0, 1.1], STEADY)})))
    widened = margins(noisy)["capacity"]
    assert widened["margin"] == pytest.approx(widened["aa"]) and widened["margin"] > 0.10
    wild = steps(pd.DataFrame(arm("session-memory", {1000: ([0.5, 1.0, 2.0], STEADY)})))
    assert margins(wild)["capacity"]["trusted"] is False
    assert margins([])["p99"] == {"margin": 0.25, "floor": 0.25, "aa": None, "trusted": None}


def test_the_trend_is_the_change_per_tenfold_users() -> None:
    # Capacity down 5% per tenfold users, exactly, at 10^3, 10^4 and 10^5.
    frame = pd.DataFrame(arm("session-memory", {
        n: ([0.95 ** math.log10(n / 1000)] * 3, STEADY) for n in (1000, 10_000, 100_000)}))
    capacity = next(r for r in trends(frame) if r["figure"] == "capacity")
    assert capacity["per_tenfold"] == pytest.approx(0.95)
    assert capacity["windows"] == 9


FACTS = {"session-memory": {"state": "process", "credential": "cookie", "denylist": "none"},
         "jwt-hs256": {"state": "client", "credential": "bearer", "denylist": "none"}}


def judged(session: dict[int, tuple[list[float], list[float]]],
           token: dict[int, tuple[list[float], list[float]]]) -> dict[str, Any]:
    frame = pd.DataFrame(arm("session-memory", session) + arm("jwt-hs256", token))
    rows = steps(frame)
    evidence = SimpleNamespace(run=SimpleNamespace(variants=Variants(FACTS)),
                               variants=Variants(FACTS),
                               growth={"steps": rows, "margins": margins(rows)})
    return axis.judge(evidence)  # type: ignore[arg-type]


def test_the_claim_holds_where_a_session_store_alone_serves_worse() -> None:
    steady = {1000: (STEADY, STEADY), 1_000_000: (STEADY, STEADY)}
    # The store's capacity 0.7x at 10^6, its interval wholly past the 10% margin.
    worse = {1000: (STEADY, STEADY), 1_000_000: ([0.69, 0.7, 0.71], STEADY)}
    assert judged(worse, steady)["holds"] == "yes"
    assert judged(worse, steady)["states"] == {"session-memory": "worse",
                                               "jwt-hs256": "no worse"}
    # Neither changed: no.
    assert judged(steady, steady)["holds"] == "no"
    # Both worse: tokens do no better, no.
    assert judged(worse, worse)["holds"] == "no"
    # The store's p99 2x at 10^6: worse too (lower is better for p99).
    slow = {1000: (STEADY, STEADY), 1_000_000: (STEADY, [1.9, 2.0, 2.1])}
    assert judged(slow, steady)["holds"] == "yes"


def test_an_interval_wider_than_the_margin_leaves_the_axis_undetermined_and_says_by_how_much(
        ) -> None:
    steady = {1000: (STEADY, STEADY), 1_000_000: (STEADY, STEADY)}
    wide = {1000: (STEADY, STEADY), 1_000_000: ([0.7, 1.0, 1.3], STEADY)}
    found = judged(wide, steady)
    assert found["holds"].startswith("undetermined (the widest interval, session-memory's "
                                     "capacity per core (flat out) at 1,000,000 live users")
    assert "reaches past the ±10% margin" in found["holds"]
    # An A/A wider than twice its floor: the run's noise hides any change worth reporting.
    noisy = {1000: ([0.6, 1.0, 1.6], STEADY), 1_000_000: (STEADY, STEADY)}
    assert "this run's noise hides any change" in judged(noisy, steady)["holds"]
    # A step that kept one window has no interval, and says so rather than "reaches past".
    bare = {1000: (STEADY, STEADY), 1_000_000: ([1.0], STEADY)}
    assert judged(bare, steady)["holds"] == (
        "undetermined (too few windows for an interval: session-memory's capacity per core "
        "(flat out) at 1,000,000 live users, 1.00x (1 window: no interval))")
    # One step only: nothing grew.
    assert judged({1000: (STEADY, STEADY)}, {1000: (STEADY, STEADY)})["holds"].startswith(
        "undetermined (")
