"""The population's duet windows as figures (loadtests/experiments/population.py): at each
step, a variant's grown server at N live users against its companion at the fewest, on one
core at once, window after window.

- capacity per core: flat out, each server's requests per CPU-second (b / a);
- p99: at the rate, each side's reads' 99th percentile (b / a), where both sides' windows
  hold enough reads for it (1,000: ten beyond it);
- CPU per request: at the rate, the server's and its own Redis's (b / a).

Per variant, figure and step: the geometric mean of the per-window ratios with its 95%
interval (analysis.stats.geometric_mean). At the first step both servers hold the fewest
users: that step is the variant's A/A control, and the run's margin for this axis is the
widest of those A/A intervals, no narrower than a stated floor (MARGIN_FLOOR); an A/A wider
than twice the floor says the run's noise hides any change worth reporting. The trend: a
least-squares line through every window's log ratio against log10 of the live users, its
slope read as the change per tenfold users, with its interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.duet import ROLES, read_window, usable
from analysis.load import read_histograms, read_json, requests
from analysis.stats import geometric_mean, linear_fit, min_count_for

ROOT = "population"
FLAT, RATE = "flat", "rate"
# Each figure: its phase, the per-side column it divides, which way is better.
FIGURES = {"capacity": (FLAT, "per_cpu_second", "higher"),
           "p99": (RATE, "p99_us", "lower"),
           "cpu": (RATE, "cpu_us_per_request", "lower")}
FIGURE_NAMES = {"capacity": "capacity per core (flat out)", "p99": "p99 at the rate",
                "cpu": "CPU per request at the rate"}
# The change each figure must exceed to count: capacity and CPU as every other axis's
# (analysis.axes.common.EQUIVALENCE_MARGIN), p99 wider (a tail from a thousand reads a
# window moves more between windows). The run's A/A widens it where its own noise is
# wider; past twice this, the run's noise is wider than any change worth reporting.
MARGIN_FLOOR = {"capacity": 0.10, "p99": 0.25, "cpu": 0.10}
NOISE_CEILING = 2.0


def side_figures(folder: Path, record: dict[str, Any], role: str) -> dict[str, Any]:
    """One side's reads (their count, p99 and longest wait, µs) and its server's full
    collections over the window, from its histograms and its /metrics before and after."""
    path = folder / role / "loadgen_hdr.json"
    reads = requests(read_histograms(path)) if path.exists() else None
    count = reads.get_total_count() if reads is not None else 0
    side = record["sides"][role]
    before, after = side.get("gc_before") or {}, side.get("gc_after") or {}
    full = after.get("gc_full_pauses", np.nan) - before.get("gc_full_pauses", np.nan)
    full_ms = (after.get("gc_full_pause_seconds", np.nan)
               - before.get("gc_full_pause_seconds", np.nan)) * 1e3
    return {f"{role}_reads": count,
            f"{role}_p99_us": float(reads.get_value_at_percentile(99))
            if count >= min_count_for(99) else np.nan,
            f"{role}_max_us": float(reads.get_max_value()) if count else np.nan,
            f"{role}_gc_full": full, f"{role}_gc_full_ms": full_ms,
            # The longest pause while serving before the window: the steps' first windows
            # tell what serving, not seeding, had cost so far.
            f"{role}_service_longest_ms": before.get("gc_service_longest_seconds", np.nan)
            * 1e3}


def windows(run_path: Path) -> pd.DataFrame:
    """Every population duet window, one row each (empty where there is none)."""
    rows = []
    for path in sorted(run_path.glob(f"raw/{ROOT}/*/*/duet.json")):
        record = read_json(path)
        row = read_window(path.parent)
        row.update(population=int(record["population"]), fewest=int(record["fewest"]),
                   distribution=record.get("distribution"))
        for role in ROLES:
            row.update(side_figures(path.parent, record, role))
        rows.append(row)
    return pd.DataFrame(rows)


def log_ratios(frame: pd.DataFrame, figure: str) -> pd.DataFrame:
    """Per usable window of a figure's phase: its variant, step and log(b / a)."""
    phase, column, _ = FIGURES[figure]
    mine = frame[(frame["phase"] == phase) & usable(frame)]
    ratio = (mine[f"b_{column}"] / mine[f"a_{column}"]).astype(float)
    keep = np.isfinite(ratio) & (ratio > 0)
    return pd.DataFrame({"variant": mine["pair"][keep], "population": mine["population"][keep],
                         "log_ratio": np.log(ratio[keep])})


def steps(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per variant, figure and step: b / a over its windows with its interval, each side's
    median, the windows used and left out, the full collections either side met."""
    if frame.empty:
        return []
    rows = []
    for figure, (phase, column, better) in FIGURES.items():
        logs = log_ratios(frame, figure)
        cells = frame[frame["phase"] == phase]
        for (variant, population), group in cells.groupby(["pair", "population"], sort=False):
            mine = logs[(logs["variant"] == variant) & (logs["population"] == population)]
            estimate = geometric_mean(np.exp(mine["log_ratio"].to_numpy()))
            rows.append({
                "variant": variant, "population": int(population),
                "fewest": int(group["fewest"].iloc[0]), "figure": figure, "better": better,
                **estimate.as_dict(), "windows": len(group), "left_out": len(group) - len(mine),
                "a_median": float(group[f"a_{column}"].median()),
                "b_median": float(group[f"b_{column}"].median()),
                "rate": float(group["rate"].median()),
                "b_reads": int(group["b_reads"].sum()),
                "b_max_ms": float(group["b_max_us"].max()) / 1000,
                "gc_full": float(group[["a_gc_full", "b_gc_full"]].sum().sum()),
                "b_gc_full_ms": float(group["b_gc_full_ms"].max()),
                "b_service_longest_ms": float(group["b_service_longest_ms"].min())})
    return rows


def margins(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per figure, the run's margin: the widest deviation from 1 of any variant's A/A
    interval (its first step, both servers at the fewest), no narrower than MARGIN_FLOOR;
    `trusted` where that A/A deviation stays within NOISE_CEILING times the floor (None
    where no A/A interval was measured)."""
    found = {}
    for figure, floor in MARGIN_FLOOR.items():
        widest = [max(abs(math.log(r["ratio_low"])), abs(math.log(r["ratio_high"])))
                  for r in rows if r["figure"] == figure and r["population"] == r["fewest"]
                  and r["n"] >= 2 and r["ratio_low"] is not None
                  and np.isfinite(r["ratio_low"])]
        noise = math.exp(max(widest)) - 1 if widest else None
        found[figure] = {"margin": max(floor, noise or 0.0), "floor": floor, "aa": noise,
                         "trusted": None if noise is None else noise <= NOISE_CEILING * floor}
    return found


def trends(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per variant and figure: the change per tenfold live users, from a least-squares line
    through every window's log ratio against log10 of its live users, with its interval."""
    if frame.empty:
        return []
    rows = []
    for figure in FIGURES:
        logs = log_ratios(frame, figure)
        for variant, mine in logs.groupby("variant", sort=False):
            fit = linear_fit(np.log10(mine["population"].astype(float)), mine["log_ratio"])
            if fit is None:
                continue
            rows.append({"variant": variant, "figure": figure,
                         "per_tenfold": math.exp(fit.slope),
                         "per_tenfold_low": math.exp(fit.slope_low),
                         "per_tenfold_high": math.exp(fit.slope_high), "windows": fit.n})
    return rows
