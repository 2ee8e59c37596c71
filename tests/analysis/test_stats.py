"""The statistics, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from analysis.load import Variants
from analysis.stats import linear_fit, median_interval
from analysis.summary import _compare_axis
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


def test_identical_repetitions_decide_but_one_repetition_does_not() -> None:
    # Auth times are whole microseconds: 5, 5, 5 is three agreeing repetitions, not one.
    def figures(session: list[float], token: list[float]) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for variant, values in (("session-memory", session), ("jwt-hs256", token)):
            e = median_interval(values)
            out[variant] = {"auth_us_p50": e.median, "auth_us_p50_interval": [e.low, e.high],
                            "auth_us_p50_coverage": e.coverage}
        return out

    variants = Variants({name: spec.facts() for name, spec in BY_NAME.items()})
    axis = _compare_axis(figures([5, 5, 5], [48, 49, 52]), variants, "cpu", "auth_us_p50",
                         "{:.1f}", lower_is_better=True)
    assert axis is not None and axis["holds"] == "no"
    axis = _compare_axis(figures([5], [49]), variants, "cpu", "auth_us_p50", "{:.1f}",
                         lower_is_better=True)
    assert axis is not None and axis["holds"].startswith("undetermined")
