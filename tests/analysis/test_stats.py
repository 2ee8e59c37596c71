"""The statistics, against values worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.axes.common import NOT_MEASURED, NOT_SETTLED, pair_axis
from analysis.figures import generator_bound
from analysis.stats import (
    EQUIVALENT,
    HIGHER,
    INCONCLUSIVE,
    LOWER,
    UNDETERMINED,
    Difference,
    GeoMean,
    difference,
    geometric_mean,
    linear_fit,
    median_interval,
    min_count_for,
    paired_ratios,
    ratio_words,
)


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


def pair_row(session: str, token: str, verdict: str, low: float = 0.85,
             high: float = 1.05) -> dict[str, object]:
    return {"session": session, "token": token, "axis": "cpu", "verdict": verdict,
            "ratio": 1.0, "ratio_low": low, "ratio_high": high, "coverage": 0.9375,
            "pairs": 5, "margin": 0.1, "session_median": 10.0, "token_median": 10.0}


@pytest.mark.parametrize(("verdicts", "holds"), [
    ((LOWER, LOWER), "yes"),
    ((HIGHER, HIGHER), "no"),
    ((EQUIVALENT, EQUIVALENT), EQUIVALENT),
    ((LOWER, HIGHER), "depends on the pair: yes for session-memory → jwt-hs256; no for "
                      "session-redis → jwt-hs256-revocable"),
    ((LOWER, INCONCLUSIVE), INCONCLUSIVE),
    ((LOWER, UNDETERMINED), "undetermined (one repetition: no interval)"),
])
def test_an_axis_holds_only_when_every_declared_pair_agrees(verdicts: tuple[str, str],
                                                            holds: str) -> None:
    rows = [pair_row("session-memory", "jwt-hs256", verdicts[0]),
            pair_row("session-redis", "jwt-hs256-revocable", verdicts[1])]
    assert pair_axis("cpu", rows, "{:.1f}", "lower")["holds"] == holds
    assert pair_axis("cpu", [], "{:.1f}", "lower")["holds"] == NOT_MEASURED


@pytest.mark.parametrize(("verdicts", "holds"), [
    ((HIGHER, HIGHER), "yes"),  # tokens serve more per core: the claim holds there
    ((LOWER, LOWER), "no"),
    ((HIGHER, LOWER), "depends on the pair: yes for session-memory → jwt-hs256; no for "
                      "session-redis → jwt-hs256-revocable"),
])
def test_an_axis_where_higher_is_better_reads_the_other_way(verdicts: tuple[str, str],
                                                           holds: str) -> None:
    rows = [pair_row("session-memory", "jwt-hs256", verdicts[0]),
            pair_row("session-redis", "jwt-hs256-revocable", verdicts[1])]
    assert pair_axis("cpu", rows, "{:.1f}", "higher")["holds"] == holds


def test_an_axis_says_when_every_pair_is_on_one_side_but_not_past_the_margin() -> None:
    # One pair beyond the margin, one crossing it, both intervals below 1.0: a difference
    # that is there, of a size not settled; not a bare "inconclusive".
    rows = [pair_row("session-memory", "jwt-hs256", LOWER, 0.40, 0.45),
            pair_row("session-redis", "jwt-hs256-revocable", INCONCLUSIVE, 0.72, 0.96)]
    holds = pair_axis("capacity", rows, "{:.1f}", "higher")["holds"]
    assert holds == f"tokens lower in every pair, {NOT_SETTLED} at ±10%"
    # One interval reaching past 1.0: no side to speak of.
    rows[1] = pair_row("session-redis", "jwt-hs256-revocable", INCONCLUSIVE, 0.72, 1.02)
    assert pair_axis("capacity", rows, "{:.1f}", "higher")["holds"] == INCONCLUSIVE


def test_the_geometric_mean_and_its_interval_by_hand() -> None:
    # log ratios: ln 0.9, ln 1.0, ln 1.1; mean m, sd s; t(2) = 4.303.
    logs = [math.log(0.9), 0.0, math.log(1.1)]
    m = sum(logs) / 3
    s = math.sqrt(sum((x - m) ** 2 for x in logs) / 2)
    g = geometric_mean([0.9, 1.0, 1.1])
    assert g.center == pytest.approx(math.exp(m))
    assert g.half_width == pytest.approx(4.303 * s / math.sqrt(3))
    assert (g.low, g.high) == pytest.approx((math.exp(m - g.half_width),
                                             math.exp(m + g.half_width)))
    assert g.n == 3 and not g.within(0.03) and geometric_mean([1.0, 1.01, 0.99]).within(0.03)
    # Zeros, negatives and NaN are no ratios; one ratio has no interval.
    assert geometric_mean([0.0, -1.0, float("nan"), 2.0]).n == 1
    assert math.isnan(geometric_mean([2.0]).low)
    assert Difference(geometric_mean([2.0]), 0.1).verdict == UNDETERMINED
    assert Difference(geometric_mean([0.40, 0.41, 0.42]), 0.1).verdict == LOWER


def test_a_cell_is_generator_bound_when_its_generator_was_the_limit() -> None:
    cells = pd.DataFrame({"generator_cpu_max": [50.0, 91.0, 50.0, 89.9],
                          "achieved_rps": [1000.0, 1000.0, 940.0, 950.0],
                          "target_rps": [1000.0, 1000.0, 1000.0, 1000.0]})
    # Fine; the generator's core above 90%; under 95% of the rate; both limits just met.
    assert generator_bound(cells).tolist() == [False, True, True, False]


def test_a_ratio_reads_with_its_interval_or_says_it_has_none() -> None:
    assert geometric_mean([1.0, 1.1, 1.2]).words("{:.2f}").startswith("1.10x [")
    alone = GeoMean.of({"ratio": 1.067, "ratio_low": None, "ratio_high": None,
                        "half_width": None, "n": 1})
    assert alone.words() == "1.067x (1 window: no interval)"
    assert not alone.within(0.03)
    # Paired rounds of slices, as the latency pairs give them: one round has no interval
    # (NaN in a frame, a count read back as a float).
    assert ratio_words(8.93, float("nan"), float("nan"), 1.0, "{:.2f}", "round") == \
        "8.93x (1 round: no interval)"
    assert ratio_words(8.93, 7.71, 10.36, 5, "{:.2f}", "round") == "8.93x [7.71, 10.36]"
