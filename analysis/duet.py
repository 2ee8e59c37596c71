"""The duet's windows (two servers on one core at once: loadtests/runner/duet.py) as
figures: per window and server, the requests it served and the CPU its process (and its
own Redis) spent; per pair, the geometric mean of the per-window ratios b / a with its 95%
interval, and the A/A control's, the run's noise floor.

- Flat out, each server's requests per CPU-second of its own process: what one core would
  serve it alone (both ran CPU-bound; when the scheduler splits the core unevenly this
  still compares like with like, which the bare ratio of what each served would not).
- At one fixed rate each, CPU per request: the server's plus its own Redis's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import read_csv, read_json
from analysis.stats import GeoMean, geometric_mean

ROLES = ("a", "b")
FLAT, RATE = "flat", "rate"
AA = "aa"
# The A/A control's interval must lie within this for the duet to be trusted that day.
AA_BOUND = 0.03
# A flat-out window where the two servers together used less of the core than this was not
# server-bound (the generators, or waits on Redis, set the pace).
CORE_BUSY_FLOOR = 0.90
# A fixed-rate window where a side served less than this share of its rate did not get the
# load compared.
RATE_SHORTFALL = 0.95


def cpu_between(samples: pd.DataFrame, column: str, start: float, stop: float) -> float:
    """Seconds of CPU a process spent between two moments, interpolated from its schedstat
    samples (NaN where it was not sampled)."""
    if column not in samples:
        return np.nan
    known = samples.dropna(subset=[column])
    if len(known) < 2 or start < known["timestamp"].iloc[0] or \
            stop > known["timestamp"].iloc[-1]:
        return np.nan
    ns = np.interp([start, stop], known["timestamp"], known[column].astype(float))
    return float(ns[1] - ns[0]) / 1e9


def read_window(folder: Path) -> dict[str, Any]:
    """One window: what was asked, and per side (a_*, b_*) what it served in its measured
    window, its server's and its Redis's CPU seconds over that window, and the figures."""
    record = read_json(folder / "duet.json")
    samples = read_csv(folder / "schedstat.csv")
    row: dict[str, Any] = {k: record.get(k) for k in (
        "pair", "kind", "a", "b", "phase", "block", "window", "rate", "connections",
        "duration_s", "first", "status")}
    row["folder"] = folder.name
    for role in ROLES:
        side = record["sides"][role]
        served = side.get("served", 0)
        start = side.get("measure_from", np.nan)
        stop = start + side.get("seconds", np.nan)
        cpu = cpu_between(samples, f"{role}_server_cpu_ns", start, stop)
        redis = cpu_between(samples, f"{role}_redis_cpu_ns", start, stop) \
            if side.get("redis_pid") else 0.0
        seconds = side.get("seconds", np.nan)
        row.update({
            f"{role}_variant": side["variant"], f"{role}_served": served,
            f"{role}_errors": side.get("errors", 0), f"{role}_seconds": seconds,
            f"{role}_measure_from": start, f"{role}_rps": served / seconds,
            f"{role}_cpu_s": cpu, f"{role}_redis_cpu_s": redis,
            f"{role}_per_cpu_second": served / cpu if cpu else np.nan,
            f"{role}_cpu_us_per_request": (cpu + redis) * 1e6 / served if served else np.nan,
            f"{role}_server_cpu_us_per_request": cpu * 1e6 / served if served else np.nan,
            f"{role}_generator_cpu_s": side.get("cpu_seconds", np.nan)})
    seconds = min(row["a_seconds"], row["b_seconds"])
    row["core_busy"] = (row["a_cpu_s"] + row["b_cpu_s"]) / seconds if seconds else np.nan
    row["offset_ms"] = (row["b_measure_from"] - row["a_measure_from"]) * 1000
    return row


def windows(run_path: Path, root: str = "duet") -> pd.DataFrame:
    """Every duet window of a run under raw/`root`/ (the duet experiment's, or the
    calibration's), one row each (empty where there is none)."""
    rows = [read_window(p.parent)
            for p in sorted(run_path.glob(f"raw/{root}/*/*/duet.json"))]
    return pd.DataFrame(rows)


def usable(frame: pd.DataFrame) -> pd.Series:
    """Windows whose figures compare what they should: completed without errors; flat out
    with the core busy (server-bound); at a rate, both sides served it."""
    ok = (frame["status"] == "ok") & (frame["a_errors"] == 0) & (frame["b_errors"] == 0)
    flat = (frame["phase"] == FLAT) & (frame["core_busy"] >= CORE_BUSY_FLOOR)
    rated = (frame["phase"] == RATE) & \
        (frame["a_rps"] >= RATE_SHORTFALL * frame["rate"]) & \
        (frame["b_rps"] >= RATE_SHORTFALL * frame["rate"])
    return ok & (flat | rated)


# The two figures a duet gives, by phase: per window, b's against a's.
FIGURES = {FLAT: ("capacity per server core", "per_cpu_second", "higher"),
           RATE: ("CPU per request", "cpu_us_per_request", "lower")}


def pair_ratios(frame: pd.DataFrame, order: list[str] | None = None) -> list[dict[str, Any]]:
    """Per pair and phase: the geometric mean of b / a over its usable windows, with its
    interval, each side's median, and how many windows were left out; pairs in `order`
    (the run's), the A/A control first."""
    if frame.empty:
        return []
    keep = usable(frame)
    rank = {name: i for i, name in enumerate(order or [])}
    frame = frame.assign(_rank=[(kind != AA, rank.get(pair, len(rank)), pair)
                                for kind, pair in zip(frame["kind"], frame["pair"],
                                                      strict=True)])
    frame = frame.sort_values("_rank", kind="stable")
    rows = []
    for (pair, phase), group in frame.groupby(["pair", "phase"], sort=False):
        figure, column, better = FIGURES[phase]
        good = group[keep.loc[group.index]]
        ratios = (good[f"b_{column}"] / good[f"a_{column}"]).to_numpy(dtype=float)
        estimate = geometric_mean(ratios)
        first = group.iloc[0]
        rows.append({
            "pair": pair, "kind": first["kind"], "a": first["a"], "b": first["b"],
            "phase": phase, "figure": figure, "better": better, **estimate.as_dict(),
            "a_median": float(good[f"a_{column}"].median()) if len(good) else np.nan,
            "b_median": float(good[f"b_{column}"].median()) if len(good) else np.nan,
            "rate": float(group["rate"].median()),
            "windows": len(group), "left_out": int(len(group) - len(good)),
            "core_busy_median": float(group["core_busy"].median()),
            "served_ratio": float(np.exp(np.log(good["b_served"] / good["a_served"]).mean()))
            if len(good) else np.nan})
    return rows


def control(ratios: list[dict[str, Any]], phase: str) -> dict[str, Any] | None:
    """The A/A control of a phase, and whether it held (its interval within ±3%)."""
    found = next((r for r in ratios if r["kind"] == AA and r["phase"] == phase), None)
    if found is None:
        return None
    return {**found, "bound": AA_BOUND, "holds": GeoMean.of(found).within(AA_BOUND)}
