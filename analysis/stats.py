"""Figures with their spread: medians with a distribution-free interval, and linear fits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A median over repetitions with an interval around it, and that interval's coverage."""

    median: float
    low: float
    high: float
    coverage: float  # the probability the interval holds the true median (0.95 when n >= 6)
    n: int

    @property
    def center(self) -> float:
        return self.median

    def overlaps(self, other: Estimate) -> bool:
        return not (self.high < other.low or other.high < self.low)

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "low": self.low, "high": self.high,
                "coverage": round(self.coverage, 4), "n": self.n}


def median_interval(values: list[float] | np.ndarray, confidence: float = 0.95) -> Estimate:
    """The sample median and the order-statistic interval for the median.

    Distribution-free: [x_(k), x_(n-k+1)] covers the true median with probability
    1 - 2 P(Binomial(n, 1/2) < k). The widest k reaching `confidence` is used; with fewer
    than 6 repetitions none reaches 95%, so the interval is the full range and its actual
    coverage (75% for 3, 93.75% for 5) is reported instead of being overstated.
    """
    data = np.sort(np.asarray([v for v in values if v is not None and not np.isnan(v)],
                              dtype=float))
    n = len(data)
    if n == 0:
        return Estimate(np.nan, np.nan, np.nan, 0.0, 0)
    if n == 1:
        return Estimate(float(data[0]), float(data[0]), float(data[0]), 0.0, 1)

    def coverage(k: int) -> float:
        below = sum(math.comb(n, i) for i in range(k)) / 2 ** n
        return 1 - 2 * below

    k = 1
    while k + 1 <= n // 2 and coverage(k + 1) >= confidence:
        k += 1
    return Estimate(float(np.median(data)), float(data[k - 1]), float(data[n - k]),
                    coverage(k), n)


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    slope_low: float  # 95% interval of the slope (Student t)
    slope_high: float
    r2: float
    n: int

    def predict(self, x: float) -> float:
        return self.intercept + self.slope * x

    def as_dict(self) -> dict[str, Any]:
        return {"slope": self.slope, "intercept": self.intercept, "slope_low": self.slope_low,
                "slope_high": self.slope_high, "r2": self.r2, "n": self.n}


# Two-sided 97.5% Student t quantiles by degrees of freedom (1..30); normal beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(dof: int) -> float:
    return _T975[dof - 1] if 1 <= dof <= len(_T975) else 1.96


def linear_fit(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> LinearFit | None:
    """Ordinary least squares y = a + b x, with the slope's 95% interval."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = xs[keep], ys[keep]
    n = len(xs)
    if n < 2 or np.ptp(xs) == 0:
        return None
    slope, intercept = np.polyfit(xs, ys, 1)
    residuals = ys - (intercept + slope * xs)
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1 - float(np.sum(residuals ** 2)) / total if total > 0 else 1.0
    if n > 2:
        se = math.sqrt(float(np.sum(residuals ** 2)) / (n - 2) /
                       float(np.sum((xs - xs.mean()) ** 2)))
        half = t975(n - 2) * se
    else:
        half = math.nan
    return LinearFit(float(slope), float(intercept), float(slope - half), float(slope + half),
                     r2, n)


def paired_ratios(base: dict[int, float], other: dict[int, float]) -> list[float]:
    """other / base, repetition by repetition, over the repetitions both have.

    The variants are interleaved within each repetition (A B C A B C), so a repetition's
    pair shares the machine's state at that moment; pairing removes that drift from the
    comparison.
    """
    return [other[r] / base[r] for r in sorted(set(base) & set(other))
            if base[r] and not math.isnan(base[r]) and not math.isnan(other[r])]


@dataclass(frozen=True)
class GeoMean:
    """The geometric mean of ratios with its interval: Student's t on their logarithms
    (per-window ratios of a duet: a ratio's noise is multiplicative)."""

    center: float
    low: float
    high: float
    half_width: float  # of the interval on the log scale: 0.05 is about ±5%
    n: int
    coverage: float = 0.95

    def within(self, bound: float) -> bool:
        """The whole interval inside [1 - bound, 1 + bound]."""
        return self.n >= 2 and 1 - bound <= self.low and self.high <= 1 + bound

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": self.center, "ratio_low": self.low, "ratio_high": self.high,
                "half_width": self.half_width, "n": self.n, "coverage": self.coverage}

    @classmethod
    def of(cls, row: dict[str, Any]) -> GeoMean:
        """Back from a summary's row (as_dict's keys) to the estimate; an interval it lacks
        (under two windows, null in summary.json) as NaN."""
        def value(key: str) -> float:
            return np.nan if row.get(key) is None else float(row[key])

        return cls(row["ratio"], value("ratio_low"), value("ratio_high"),
                   value("half_width"), row["n"])

    def words(self, pattern: str = "{:.3f}") -> str:
        """The ratio with its interval as a reader reads it, or why it has none."""
        return ratio_words(self.center, self.low, self.high, self.n, pattern)


def finite(value: Any) -> bool:
    """A number, neither null (summary.json) nor NaN (a frame) nor infinite."""
    return isinstance(value, int | float) and math.isfinite(value)


def has_interval(low: Any, high: Any, n: int) -> bool:
    """Whether an estimate from `n` windows or rounds has both ends of an interval (a
    summary.json row's are null, a frame's NaN, under two)."""
    return n >= 2 and finite(low) and finite(high)


def ratio_words(ratio: float, low: Any, high: Any, n: int, pattern: str = "{:.3f}",
                unit: str = "window") -> str:
    """A ratio with its interval as a reader reads it, or why it has none: every report
    line and table cell that gives one says it this way."""
    if not has_interval(low, high, n):
        count = int(n) if math.isfinite(n) else 0  # a frame's column can hold 1.0
        return (f"{pattern.format(ratio)}x ({count} {unit}{'' if count == 1 else 's'}: "
                f"no interval)")
    return f"{pattern.format(ratio)}x [{pattern.format(low)}, {pattern.format(high)}]"


def geometric_mean(ratios: list[float] | np.ndarray, confidence: float = 0.95) -> GeoMean:
    """exp(mean(log r)) and exp(mean +- t * sd / sqrt(n)); no interval under two ratios."""
    logs = np.log(np.asarray([r for r in ratios if r and r > 0 and np.isfinite(r)],
                             dtype=float))
    n = len(logs)
    if n == 0:
        return GeoMean(np.nan, np.nan, np.nan, np.nan, 0, confidence)
    center = float(logs.mean())
    if n == 1:
        return GeoMean(math.exp(center), np.nan, np.nan, np.nan, 1, confidence)
    if confidence != 0.95:
        raise ValueError("only the 95% interval is tabulated")
    half = t975(n - 1) * float(logs.std(ddof=1)) / math.sqrt(n)
    return GeoMean(math.exp(center), math.exp(center - half), math.exp(center + half), half,
                   n, confidence)


# Verdicts on a difference between two variants.
LOWER, HIGHER = "lower", "higher"
EQUIVALENT = "no measurable difference"
INCONCLUSIVE = "inconclusive"
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class Difference:
    """The ratio other / base with its interval, read against an equivalence margin."""

    ratio: Estimate | GeoMean
    margin: float  # relative: 0.10 means "within +-10% counts as no difference"

    @property
    def verdict(self) -> str:
        """`lower` or `higher` (other against base) when the whole interval is beyond the
        margin on one side; `no measurable difference` when it lies inside the margin;
        `inconclusive` when it straddles an edge; `undetermined` with fewer than two pairs
        (no interval)."""
        r = self.ratio
        if r.n < 2 or math.isnan(r.low):
            return UNDETERMINED
        if 1 - self.margin <= r.low and r.high <= 1 + self.margin:
            return EQUIVALENT
        if r.high < 1 - self.margin:
            return LOWER
        if r.low > 1 + self.margin:
            return HIGHER
        return INCONCLUSIVE

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio.center, "ratio_low": self.ratio.low,
                "ratio_high": self.ratio.high, "coverage": round(self.ratio.coverage, 4),
                "pairs": self.ratio.n, "margin": self.margin, "verdict": self.verdict}


def difference(base: dict[int, float], other: dict[int, float], margin: float) -> Difference:
    """The median of other / base over paired repetitions, its order-statistic interval
    (whose real coverage is kept: 93.75% for 5 pairs, 96.9% for 6), read against ±margin."""
    return Difference(median_interval(paired_ratios(base, other)), margin)


def min_count_for(percentile: float) -> int:
    """Requests a cell needs before its percentile is shown: ten beyond it (p99: 1,000;
    p99.9: 10,000), so the figure rests on more than a handful of samples."""
    return math.ceil(round(10 / (1 - percentile / 100), 6)) if percentile < 100 else 0
