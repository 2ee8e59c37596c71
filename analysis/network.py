"""The shared store across a network and at its ceiling: what a round trip to Redis does to
the Redis variants (loadtests/experiments/network.py), and how many server cores one Redis
core carries (loadtests/experiments/store_ceiling.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.figures import shown_ms
from analysis.load import Run

NAME = "network"


def mean_wait_ms(run: Run, folder: str) -> float:
    """The mean latency of a cell's reads (ms), from its histogram."""
    measurement = next(m for m in run.measurements(NAME)
                       if str(m.folder.relative_to(run.path)) == folder)
    histogram = measurement.histogram("latency")
    return float(histogram.get_mean_value()) / 1000 if histogram is not None else np.nan


def network_table(run: Run) -> pd.DataFrame:
    """Per Redis variant and added round trip: what one core served flat out, per CPU
    second of the server; at the common rate p50 and p99, the server's CPU per request and
    the requests in flight (the rate times the mean wait, Little's law). Medians over the
    rounds; the round trip as measured by PINGs through the forwarder beside it."""
    table = run.table
    if table.empty or "rtt_ms" not in table:
        return pd.DataFrame()
    cells = table[(table["experiment"] == NAME) & (table["status"] == "ok")]
    if cells.empty:
        return pd.DataFrame()
    measured = run.csv(f"raw/{NAME}/rtt.csv")
    rows = []
    for (variant, rtt), group in cells.groupby(["variant", "rtt_ms"], sort=True):
        flat = group[group["phase"] == "saturation"]
        common = group[group["phase"] == "common"]
        pinged = measured[(measured["variant"] == variant) & (measured["rtt_ms"] == rtt)] \
            if not measured.empty else measured
        row: dict[str, Any] = {
            "variant": variant, "rtt_ms": float(rtt),
            "ping_ms": float(pinged["median_ms"].iloc[0]) if len(pinged) else None,
            "flat_rps": float(flat["achieved_rps"].median()) if len(flat) else None,
            "per_core_rps": float((1e6 / flat["server_cpu_us_per_request"]).median())
            if len(flat) else None,
            "target_rps": float(common["target_rps"].median()) if len(common) else None,
            "achieved_rps": float(common["achieved_rps"].median()) if len(common) else None,
            "server_cpu_us_per_request": float(common["server_cpu_us_per_request"].median())
            if len(common) else None,
            "in_flight": float(np.median([
                r.achieved_rps * mean_wait_ms(run, r.folder) / 1000
                for r in common.itertuples()])) if len(common) else None,
            "requests": int(common["measured_requests"].sum()) if len(common) else 0}
        if len(common):
            row.update(shown_ms(row["requests"] / len(common),
                                common[[f"latency_us_{p}" for p in ("p50", "p90", "p99",
                                                                    "p99.9")]].median()))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for _, mine in frame.groupby("variant"):
        base = mine[mine["rtt_ms"] == 0.0]
        if base.empty:
            continue
        for column in ("per_core_rps", "p50_ms", "p99_ms"):
            if column in frame and base[column].iloc[0]:
                frame.loc[mine.index, f"{column}_vs_direct"] = \
                    mine[column] / base[column].iloc[0]
    return frame


def forwarder_cpu(run: Run) -> pd.DataFrame:
    """The forwarder's own CPU per request it carried, per added round trip."""
    frame = run.csv(f"raw/{NAME}/forwarder.csv")
    if frame.empty:
        return frame
    frame = frame.assign(us_per_request=frame["cpu_s"] * 1e6 / frame["requests"].clip(lower=1))
    return frame.groupby(["variant", "rtt_ms"], as_index=False)["us_per_request"].median()


def store_ceiling(run: Run, figures: dict[str, dict[str, Any]],
                  duet_windows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per Redis variant: Redis's lookups per second at its ceiling (and per core, where
    its core was the limit), the server's capacity per core beside it, and K, the server
    cores one Redis core carries, twice: from the ceiling, and from the CPU each request
    costs the server and Redis in the duet's flat-out windows (where Redis, serving one
    server, is far from its ceiling: it pays a wake-up per request, so this K is lower)."""
    ceiling = run.csv("raw/store_ceiling/ceiling.csv")
    if ceiling.empty:
        return []
    rows = []
    for r in ceiling.to_dict("records"):
        variant = r["variant"]
        busy = float(r["redis_cpu_percent"]) / 100
        per_core = float(r["rps"]) / busy if busy else np.nan
        server, redis = duet_costs(duet_windows, variant)
        capacity = 1e6 / server if server else figures.get(variant, {}).get("capacity_rps")
        rows.append({
            "variant": variant, "command": r["command"], "connections": int(r["connections"]),
            "lookups_per_s": float(r["rps"]), "redis_core_busy": busy,
            "client_core_busy": float(r["client_cpu_percent"]) / 100
            if pd.notna(r.get("client_cpu_percent")) else None,
            "store_bound": busy >= 0.9, "lookups_per_redis_core": per_core,
            "server_capacity_per_core": capacity,
            "k_from_ceiling": per_core / capacity if capacity else None,
            "server_cpu_us_per_request": server, "redis_cpu_us_per_request": redis,
            "k_from_cpu": server / redis if server and redis else None})
    return rows


def duet_costs(frame: pd.DataFrame, variant: str) -> tuple[float | None, float | None]:
    """A variant's server and Redis CPU per request (µs) in the duet's flat-out windows,
    the server at its capacity (median over every side it played)."""
    if frame.empty:
        return None, None
    server, redis = [], []
    for role in ("a", "b"):
        mine = frame[(frame["phase"] == "flat") & (frame[f"{role}_variant"] == variant)]
        served = mine[f"{role}_served"].clip(lower=1)
        server += list(mine[f"{role}_cpu_s"] * 1e6 / served)
        redis += list(mine[f"{role}_redis_cpu_s"] * 1e6 / served)
    if not server:
        return None, None
    return float(np.median(server)), float(np.median(redis)) if any(redis) else None
