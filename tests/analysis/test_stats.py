"""The statistics, against values worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.load import Variants
from analysis.stats import (
    EQUIVALENT,
    HIGHER,
    INCONCLUSIVE,
    LOWER,
    UNDETERMINED,
    difference,
    linear_fit,
    median_interval,
    min_count_for,
    paired_ratios,
)
from analysis.summary import (
    NOT_MEASURED,
    SERVICE_AXIS,
    generator_bound,
    pair_axis,
    service_axis,
    verdict,
)
from servers.variants.registry import BY_NAME


def test_median_interval_small_n_is_the_range_with_its_true_coverage() -> None:
    e = median_interval([3.0, 1.0, 2.0])
    assert (e.median, e.low, e.high, e.n) == (2.0, 1.0, 3.0, 3)
    assert e.coverage == pytest.approx(0.75)  # 1 - 2 * (1/8)
    assert median_interval([1, 2, 3, 4, 5]).coverage == pytest.approx(0.9375)


def test_median_interval_reaches_95_with_enough_repetitions() -> None:
    e6 = median_interval([6, 1, 5, 2, 4, 3])
    assert (e6.low, e6.high) == (1, 6)
    assert e6.coverage == pytest.approx(1 - 2 / 64)
    e10 = median_interval(list(range(1, 11)))
    # P(B(10, 1/2) < 2) = 11/1024: [x2, x9] covers 97.85%; [x3, x8] only 89%.
    assert (e10.low, e10.high, e10.median) == (2, 9, 5.5)
    assert e10.coverage == pytest.approx(1 - 22 / 1024)


def test_median_interval_edge_cases() -> None:
    assert median_interval([]).n == 0
    one = median_interval([7.0, float("nan")])
    assert (one.median, one.low, one.high, one.coverage) == (7.0, 7.0, 7.0, 0.0)
    a, b = median_interval([1, 2, 3]), median_interval([3, 4, 5])
    assert a.overlaps(b)
    assert not a.overlaps(median_interval([4, 5, 6]))


def test_linear_fit_by_hand() -> None:
    # y = 100 + 2x exactly, then one point off by +6: slope = Sxy/Sxx worked by hand.
    fit = linear_fit([0, 1, 2, 3], [100, 102, 104, 112])
    # xbar = 1.5, ybar = 104.5; Sxy = (-1.5)(-4.5)+(-.5)(-2.5)+(.5)(-.5)+(1.5)(7.5) = 19
    # Sxx = 5 -> slope 3.8, intercept 104.5 - 3.8 * 1.5 = 98.8
    assert fit is not None
    assert fit.slope == pytest.approx(3.8)
    assert fit.intercept == pytest.approx(98.8)
    # residuals 1.2, -0.6, -2.4, 1.8 -> SSE 10.8; se = sqrt(10.8 / 2 / 5); t(2) = 4.303
    half = 4.303 * math.sqrt(10.8 / 2 / 5)
    assert fit.slope_low == pytest.approx(3.8 - half)
    assert fit.slope_high == pytest.approx(3.8 + half)
    assert fit.r2 == pytest.approx(1 - 10.8 / (4.5**2 + 2.5**2 + 0.5**2 + 7.5**2))
    assert fit.predict(10) == pytest.approx(98.8 + 38)


def test_linear_fit_needs_two_distinct_x() -> None:
    assert linear_fit([1], [2]) is None
    assert linear_fit([1, 1], [2, 3]) is None


def test_paired_ratios_pair_by_repetition() -> None:
    # Repetition 3 is missing on one side and repetition 4 has a zero base: both left out.
    base = {1: 100.0, 2: 200.0, 3: 50.0, 4: 0.0}
    other = {1: 110.0, 2: 180.0, 4: 7.0, 5: 9.0}
    assert paired_ratios(base, other) == [1.1, 0.9]


@pytest.mark.parametrize(("ratios", "verdict"), [
    ([0.80, 0.82, 0.85, 0.79, 0.84], LOWER),        # interval [0.79, 0.85], all below 0.9
    ([1.20, 1.15, 1.31, 1.22, 1.18], HIGHER),       # [1.15, 1.31], all above 1.1
    ([0.97, 1.02, 1.05, 0.95, 1.00], EQUIVALENT),   # [0.95, 1.05], inside +-10%
    ([0.85, 0.95, 1.00, 1.02, 0.98], INCONCLUSIVE),  # [0.85, 1.02] crosses 0.9
    ([0.70, 1.30, 1.00, 0.95, 1.05], INCONCLUSIVE),  # straddles both edges
    ([0.5], UNDETERMINED),                          # one pair: no interval
])
def test_difference_against_the_margin_by_hand(ratios: list[float], verdict: str) -> None:
    base = {i: 100.0 for i in range(len(ratios))}
    other = {i: 100.0 * r for i, r in enumerate(ratios)}
    d = difference(base, other, 0.10)
    assert d.verdict == verdict
    if len(ratios) == 5:
        # Five pairs: the interval is the full range, covering the median with
        # probability 1 - 2 / 2^5 = 93.75%, which is what the tables print.
        assert (d.ratio.low, d.ratio.high) == pytest.approx((min(ratios), max(ratios)))
        assert d.as_dict()["coverage"] == 0.9375
        assert d.ratio.median == pytest.approx(sorted(ratios)[2])


def test_percentile_needs_ten_requests_beyond_it() -> None:
    assert min_count_for(99.9) == 10_000
    assert min_count_for(99) == 1_000
    assert min_count_for(90) == 100
    assert min_count_for(50) == 20
    assert min_count_for(0) == 10


def pair_row(session: str, token: str, verdict: str) -> dict[str, object]:
    return {"session": session, "token": token, "axis": "cpu", "verdict": verdict,
            "ratio": 1.0, "ratio_low": 0.9, "ratio_high": 1.1, "coverage": 0.9375, "pairs": 5,
            "session_median": 10.0, "token_median": 10.0}


@pytest.mark.parametrize(("verdicts", "holds"), [
    ((LOWER, LOWER), "yes"),
    ((HIGHER, HIGHER), "no"),
    ((EQUIVALENT, EQUIVALENT), EQUIVALENT),
    ((LOWER, HIGHER), "depends on the pair"),
    ((LOWER, INCONCLUSIVE), INCONCLUSIVE),
    ((LOWER, UNDETERMINED), "undetermined (one repetition: no interval)"),
])
def test_an_axis_holds_only_when_every_declared_pair_agrees(verdicts: tuple[str, str],
                                                            holds: str) -> None:
    rows = [pair_row("session-memory", "jwt-hs256", verdicts[0]),
            pair_row("session-redis", "jwt-hs256-revocable", verdicts[1])]
    assert pair_axis("cpu", rows, "{:.1f}")["holds"] == holds
    assert pair_axis("latency", rows, "{:.1f}")["holds"] == NOT_MEASURED


@pytest.mark.parametrize(("verdicts", "holds"), [
    ((HIGHER, HIGHER), "yes"),  # tokens serve more per core: the claim holds there
    ((LOWER, LOWER), "no"),
    ((HIGHER, LOWER), "depends on the pair"),
])
def test_an_axis_where_higher_is_better_reads_the_other_way(verdicts: tuple[str, str],
                                                           holds: str) -> None:
    rows = [{**pair_row("session-memory", "jwt-hs256", verdicts[0]), "better": "higher"},
            {**pair_row("session-redis", "jwt-hs256-revocable", verdicts[1]),
             "better": "higher"}]
    assert pair_axis("cpu", rows, "{:.1f}")["holds"] == holds


def test_no_overall_verdict_over_axes_not_measured() -> None:
    variants = Variants({name: spec.facts() for name, spec in BY_NAME.items()})
    figures = {"session-memory": {"bytes_per_session": 700.0, "header_bytes": 60},
               "jwt-hs256": {"bytes_per_session": 5.0, "header_bytes": 280}}
    result = verdict(figures, 2**34, variants, [])
    holds = {a["axis"]: a["holds"] for a in result["axes"]}
    assert holds["memory per live user"] == "yes"
    assert holds["bytes on the wire per request"] == "no"
    assert holds["logout (revocation)"] == NOT_MEASURED
    assert result["conclusion"].startswith("No overall verdict: this run did not measure ")
    assert "logout (revocation)" in result["conclusion"]
    assert "Overall:" not in result["conclusion"]


def steps(variant: str, capacities: tuple[float, float], p99s: tuple[float, float],
          distribution: str = "uniform") -> list[dict[str, object]]:
    """A variant's population steps at 10^3 and 10^6 live users: flat out, then common."""
    rows: list[dict[str, object]] = []
    for size, capacity, p99 in zip((1000, 1_000_000), capacities, p99s, strict=True):
        base = {"variant": variant, "remedy": "", "population": size,
                "distribution": distribution}
        rows += [{**base, "phase": "saturation", "achieved_rps": capacity, "p99_ms": 1.0},
                 {**base, "phase": "common", "achieved_rps": 1000.0, "p99_ms": p99}]
    return rows


@pytest.mark.parametrize(("session", "token", "holds"), [
    # The in-memory store lost 30% of its capacity at 10^6; the token held: holds.
    (((20000, 14000), (1.0, 1.1)), ((7000, 6900), (2.0, 2.1)), "yes"),
    # Its p99 grew 5x, by 4 ms: holds.
    (((20000, 19000), (1.0, 5.0)), ((7000, 6900), (2.0, 2.1)), "yes"),
    # 2.5x but only 0.3 ms more (sub-millisecond noise), capacity within 20%: does not.
    (((20000, 17000), (0.2, 0.5)), ((7000, 6900), (2.0, 2.1)), "no"),
    # Both degraded: tokens do no better.
    (((20000, 14000), (1.0, 1.1)), ((7000, 4000), (2.0, 2.1)), "no"),
])
def test_service_as_live_users_grow_holds_only_where_sessions_alone_degrade(
        session: tuple[tuple[float, float], tuple[float, float]],
        token: tuple[tuple[float, float], tuple[float, float]], holds: str) -> None:
    population = pd.DataFrame(
        steps("session-memory", *session)
        # The hot set and the remedy's arm are not what the axis reads.
        + steps("session-memory", (20000, 1000), (1.0, 90.0), distribution="zipf")
        + steps("jwt-hs256", *token, distribution="minted"))
    axis = service_axis(population, ("session-memory",), ("jwt-hs256",))
    assert axis is not None and axis["axis"] == SERVICE_AXIS
    assert axis["holds"] == holds, axis
    assert "20%" in axis["detail"] and "2x" in axis["detail"]
    # Without a token side measured, the axis is not measured.
    assert service_axis(population, ("session-memory",), ("jwt-rs256",)) is None


def test_a_cell_is_generator_bound_when_its_generator_was_the_limit() -> None:
    cells = pd.DataFrame({"generator_cpu_max": [50.0, 91.0, 50.0, 89.9],
                          "achieved_rps": [1000.0, 1000.0, 940.0, 950.0],
                          "target_rps": [1000.0, 1000.0, 1000.0, 1000.0]})
    # Fine; the generator's core above 90%; under 95% of the rate; both limits just met.
    assert generator_bound(cells).tolist() == [False, True, True, False]
