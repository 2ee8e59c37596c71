"""Each variant's figures from a run's tidy tables, with their spread: latency at the common
rates, flat out, the knee, live users, connections, memory, CPU, bytes and logout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import Run
from analysis.stats import Estimate, LinearFit, linear_fit, median_interval, min_count_for

GENERATOR_CPU_LIMIT = 90.0
# The latency experiment's phases (loadtests/experiments/latency.py), and the population's
# login storm (loadtests/experiments/population.py).
SATURATION, COMMON, KNEE, STORM = "saturation", "common", "knee", "storm"
PERCENTILES = ("p50", "p90", "p99", "p99.9")
RATE_SHORTFALL = 0.95


def memory_fits(run: Run) -> dict[str, dict[str, LinearFit | None]]:
    """Bytes per live session by linear fit of memory against live sessions, per variant.

    Stateful variants are fitted against the live sessions the server reported; stateless
    ones (which report none) against the population size, so their slope says what one more
    user costs them.
    """
    population = run.population
    fits: dict[str, dict[str, LinearFit | None]] = {}
    if population.empty:
        return fits
    for variant, rows in population.groupby("variant", sort=False):
        x = rows["live_sessions"] if rows["live_sessions"].max() > 0 else rows["size"]
        server = rows["server_rss_bytes"].astype(float)
        redis = rows.get("redis_used_memory_bytes", pd.Series(np.nan, index=rows.index))
        redis = redis.astype(float)
        total = server + redis.fillna(0.0)
        fits[str(variant)] = {"total": linear_fit(x, total), "server": linear_fit(x, server),
                              "redis": linear_fit(x, redis) if redis.notna().all() else None}
    return fits


def estimates(frame: pd.DataFrame, column: str) -> Estimate:
    return median_interval(frame[column].to_numpy(dtype=float))


def latency_curve(run: Run) -> pd.DataFrame:
    """Per variant and target rate: each percentile's median and interval over repetitions.

    A percentile is given only where every repetition's cell holds enough requests for it
    (stats.min_count_for: 1,000 for p99, 10,000 for p99.9); `requests_min` says how many
    the smallest cell held.
    """
    table = run.table
    if table.empty:
        return pd.DataFrame()
    latency = phase_cells(table, COMMON)
    rows = []
    for (variant, rate), group in latency.groupby(["variant", "target_rps"], sort=False):
        fewest = int(group["measured_requests"].min())
        row: dict[str, Any] = {"variant": variant, "target_rps": float(rate),
                               "repetitions": len(group), "requests_min": fewest,
                               "seconds_per_cell": float(group["window_s"].median())}
        for p in PERCENTILES:
            e = estimates(group, f"latency_us_{p}")
            shown = fewest >= min_count_for(float(p[1:]))
            row.update({f"{p}_ms": e.median / 1000 if shown else None,
                        f"{p}_ms_low": e.low / 1000 if shown else None,
                        f"{p}_ms_high": e.high / 1000 if shown else None})
        achieved = estimates(group, "achieved_rps")
        row.update(achieved_rps=achieved.median, achieved_rps_low=achieved.low,
                   achieved_rps_high=achieved.high,
                   generator_cpu_max=float(group["generator_cpu_max"].max()),
                   generator_bound=bool(
                       group["generator_cpu_max"].max() > GENERATOR_CPU_LIMIT
                       or achieved.median < RATE_SHORTFALL * float(rate)),
                   error_rate=float(group["failures"].sum() / max(1, group["requests"].sum())),
                   coverage=achieved.coverage)
        rows.append(row)
    return pd.DataFrame(rows)


def phase_cells(table: pd.DataFrame, phase: str) -> pd.DataFrame:
    """The latency experiment's completed cells of one phase (saturation, common, knee)."""
    if table.empty:
        return table
    return table[(table["experiment"] == "latency") & (table["status"] == "ok")
                 & (table["phase"] == phase)]


def headline(table: pd.DataFrame) -> pd.DataFrame:
    """The latency experiment's common-rate cells at its highest common rate: the load every
    headline latency, auth and CPU figure is read at (the same rate for every variant)."""
    latency = phase_cells(table, COMMON)
    if latency.empty:
        return latency
    return latency[latency["target_rps"] == latency["target_rps"].max()]


LATENCY_COLUMNS = [f"latency_us_{p}" for p in PERCENTILES]


def shown_ms(requests: float, latency: Mapping[str, Any]) -> dict[str, float | None]:
    """Each percentile in ms, from `latency`'s latency_us_<p> (a table row, or medians),
    where `requests` are enough for it (stats.min_count_for: 1,000 for p99, 10,000 for
    p99.9), else None."""
    return {f"{p}_ms": float(latency[f"latency_us_{p}"]) / 1000
            if requests >= min_count_for(float(p[1:])) else None for p in PERCENTILES}


def knee_curve(run: Run) -> pd.DataFrame:
    """Each variant at fractions of its own capacity (one cell each): what it served, its
    latency (a percentile only where the cell holds enough requests), its CPU."""
    knee = phase_cells(run.table, KNEE)
    rows = []
    if knee.empty:
        return pd.DataFrame()
    order = {v: i for i, v in enumerate(run.variants.ordered(knee["variant"]))}
    knee = knee.assign(order=knee["variant"].map(order)).sort_values(["order", "fraction"])
    for r in knee.to_dict("records"):
        row: dict[str, Any] = {k: r[k] for k in (
            "variant", "fraction", "target_rps", "achieved_rps", "unanswered", "window_s",
            "error_rate", "server_cpu_percent", "server_cpu_us_per_request",
            "redis_cpu_us_per_request", "generator_cpu_max", "generator")}
        row["server_core_steal_percent"] = r.get("server_core_steal_percent")
        row["gc_pause_ms"] = r.get("gc_pause_ms")
        row["requests"] = int(r["measured_requests"])
        row["capacity_rps"] = r.get("capacity_rps")
        row.update(shown_ms(r["measured_requests"], r))
        rows.append(row)
    return pd.DataFrame(rows)


def login_churn(cells: pd.DataFrame) -> dict[str, float | None]:
    """The logins sent beside a step's reads: how many (all repetitions), their p99 where
    there are enough of them for it, and the longest one (ms)."""
    if "login_requests" not in cells:  # a run from before the population's churn
        return {"logins": 0, "login_p99_ms": None, "login_max_ms": None}
    logins = int(cells["login_requests"].fillna(0).sum())
    enough = logins >= min_count_for(99)
    return {"logins": logins,
            "login_p99_ms": float(cells["login_us_p99"].median()) / 1000 if enough else None,
            "login_max_ms": float(cells["login_us_max"].max()) / 1000 if logins else None}


def storms(run: Run) -> pd.DataFrame:
    """The population's login storms, one row each: what was asked (the rate, the seconds,
    whose storm it matched), what it met (logins and reads, the store's growth), the
    server's full collections in it (how many, their time, the longest), the longest pause
    it has had while serving so far, and the reads' p99 and longest wait."""
    cells = [m for m in run.measurements("population")
             if m.record.info.get("phase") == STORM and m.record.ok]
    if not cells:
        return pd.DataFrame()
    order = {v: i for i, v in enumerate(run.variants.ordered(m.record.variant for m in cells))}
    rows = []
    for m in cells:
        r, info = m.row(run.path), m.record.info
        logins = int(r.get("login_requests") or 0)
        row: dict[str, Any] = {
            "variant": r["variant"], "remedy": r["remedy"] or "",
            "population": int(r["population"]), "matched": info.get("matched"),
            "live_sessions_before": info.get("live_sessions_before"),
            "target_rps": float(r["target_rps"]), "achieved_rps": float(r["achieved_rps"]),
            "seconds": float(r["window_s"]), "reads": int(r["measured_requests"]),
            "logins": logins, "grown_by": logins / int(r["population"]),
            "error_rate": float(r["error_rate"]),
            **{k: float(r[k]) for k in ("gc_full_pauses", "gc_full_pause_ms",
                                        "gc_full_longest_ms", "gc_service_longest_ms")},
            # The reads' longest wait: where a stall of the event loop shows in full.
            "max_ms": float(r["latency_us_max"]) / 1000,
            "order": order[r["variant"]]}
        row.update(login_churn(pd.DataFrame([r])))
        row.update(shown_ms(r["measured_requests"], r))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["population", "order", "remedy"]).drop(
        columns="order").reset_index(drop=True)


def connections_curve(run: Run) -> pd.DataFrame:
    """The connections experiment: per variant and number of connections open at once
    (each its own user), what was served at the fixed rate, its latency (a percentile only
    with enough requests), errors, and the server's peak RSS with what each connection
    added to it over the fewest connections measured. Medians over repetitions."""
    table = run.table
    if table.empty or "connections" not in table:
        return pd.DataFrame()
    cells = table[(table["experiment"] == "connections") & (table["status"] == "ok")]
    if cells.empty:
        return pd.DataFrame()
    rows = []
    for variant in run.variants.ordered(cells["variant"]):
        mine = cells[cells["variant"] == variant]
        fewest = None
        for count, group in sorted(mine.groupby("connections"), key=lambda kv: kv[0]):
            requests = int(group["measured_requests"].sum())
            rss = float(group["server_rss_peak_bytes"].median())
            fewest = fewest or (int(count), rss)
            row: dict[str, Any] = {
                "variant": variant, "connections": int(count), "requests": requests,
                "target_rps": float(group["target_rps"].median()),
                "achieved_rps": float(group["achieved_rps"].median()),
                "errors": int(group["failures"].sum()),
                "primed": bool(group["primed"].all()),
                "server_rss_peak_bytes": rss,
                "bytes_per_connection": ((rss - fewest[1]) / (count - fewest[0])
                                         if count > fewest[0] else None)}
            row.update(shown_ms(requests, group[LATENCY_COLUMNS].median()))
            rows.append(row)
    return pd.DataFrame(rows)


def cpu_cores(cells: pd.DataFrame) -> pd.Series:
    """Server plus Redis CPU, in cores, over each cell's measured window."""
    return cells["cpu_total_us_per_request"] * cells["achieved_rps"] / 1e6


def cpu_model(run: Run) -> dict[str, dict[str, Any]]:
    """Per variant, CPU (server + Redis, in cores) against the rate served, fitted over
    the knee's points up to its capacity and the common-rate cells: a fixed cost (the
    intercept, in cores) and a marginal cost (the slope, in us per request). Only where the
    points span at least a factor of two in rate: cells at one rate alone (a variant the
    knee did not measure) fix no line, and a fit through their scatter reads nonsense."""
    table = run.table
    knee = phase_cells(table, KNEE)
    if not knee.empty:
        knee = knee[knee["fraction"] <= 1.0]
    cells = pd.concat([phase_cells(table, COMMON), knee])
    model: dict[str, dict[str, Any]] = {}
    if cells.empty:
        return model
    for variant, mine in cells.groupby("variant", sort=False):
        if mine["achieved_rps"].max() < 2 * mine["achieved_rps"].min():
            continue
        fit = linear_fit(mine["achieved_rps"], cpu_cores(mine))
        if fit is None:
            continue
        model[str(variant)] = {"fixed_cores": fit.intercept, "marginal_us": fit.slope * 1e6,
                               "marginal_us_interval": [fit.slope_low * 1e6,
                                                        fit.slope_high * 1e6],
                               "r2": fit.r2, "points": fit.n,
                               "rates": [float(mine["achieved_rps"].min()),
                                         float(mine["achieved_rps"].max())]}
    return model


# Headline figures: summary key, the table's column, scale, and the percentile it needs
# enough requests for (0: any cell of ten requests or more).


HEADLINE_FIGURES = (
    ("auth_us_p50", "auth_us_p50", 1.0, 50.0),
    ("auth_us_p99", "auth_us_p99", 1.0, 99.0),
    ("latency_ms_p50", "latency_us_p50", 1e-3, 50.0),
    ("latency_ms_p99", "latency_us_p99", 1e-3, 99.0),
    ("latency_ms_p999", "latency_us_p99.9", 1e-3, 99.9),
    ("rps", "achieved_rps", 1.0, 0.0),
    ("cpu_us_per_request", "cpu_total_us_per_request", 1.0, 0.0),
    ("server_cpu_us_per_request", "server_cpu_us_per_request", 1.0, 0.0),
    ("redis_cpu_us_per_request", "redis_cpu_us_per_request", 1.0, 0.0),
)
# Flat out (the saturation phase): summary key, the table's column.
SATURATION_FIGURES = (
    ("capacity_rps", "achieved_rps"),
    ("capacity_server_cpu_percent", "server_cpu_percent"),
    ("capacity_cpu_us_per_request", "cpu_total_us_per_request"),
    ("capacity_latency_ms_p50", "latency_us_p50"),
)


def variant_figures(run: Run) -> dict[str, dict[str, Any]]:
    table = run.table
    fits = memory_fits(run)
    wire = run.wire.set_index("variant") if not run.wire.empty else pd.DataFrame()
    at_headline = headline(table)
    saturated = phase_cells(table, SATURATION)
    model = cpu_model(run)
    figures: dict[str, dict[str, Any]] = {}
    # The run's variants only: the generator's floor (nginx) has cells, and no figures.
    variants = [v for v in dict.fromkeys(table["variant"]) if v in run.variants.facts] \
        if not table.empty else []
    for variant in variants:
        mine = table[(table["variant"] == variant) & (table["status"] == "ok")]
        latency = mine[mine["experiment"] == "latency"]
        f: dict[str, Any] = {}
        fit = fits.get(variant, {})
        total = fit.get("total")
        f["bytes_per_session"] = total.slope if total else None
        f["bytes_per_session_interval"] = [total.slope_low, total.slope_high] if total else None
        f["server_bytes_per_session"] = fit["server"].slope if fit.get("server") else None
        f["redis_bytes_per_session"] = fit["redis"].slope if fit.get("redis") else None
        cells = at_headline[at_headline["variant"] == variant]
        if not cells.empty:
            fewest = int(cells["measured_requests"].min())
            f["requests_min"] = fewest
            for name, column, scale, percentile in HEADLINE_FIGURES:
                e = estimates(cells, column)
                shown = fewest >= min_count_for(percentile)
                f[name] = e.median * scale if shown else None
                f[f"{name}_interval"] = [e.low * scale, e.high * scale] if shown else None
                f[f"{name}_coverage"] = e.coverage
            f["target_rps"] = float(cells["target_rps"].iloc[0])
            f["error_rate"] = float(latency["failures"].sum() / max(1, latency["requests"].sum()))
            f["generator_bound"] = bool(
                (cells["generator_cpu_max"] > GENERATOR_CPU_LIMIT).any()
                or (f["rps"] < RATE_SHORTFALL * f["target_rps"]))
        else:
            for name, *_ in HEADLINE_FIGURES:
                f[name] = None
            f["error_rate"] = None
        flat_out = saturated[saturated["variant"] == variant] if not saturated.empty \
            else saturated
        if not flat_out.empty:
            for name, column in SATURATION_FIGURES:
                e = estimates(flat_out, column)
                scale = 1e-3 if column.startswith("latency") else 1.0
                f[name] = e.median * scale
                f[f"{name}_interval"] = [e.low * scale, e.high * scale]
            f["capacity_generator_cpu_max"] = float(flat_out["generator_cpu_max"].max())
            f["capacity_repetitions"] = len(flat_out)
        f["cpu_model"] = model.get(variant)
        f["generator"] = ", ".join(sorted(set(latency["generator"]))) \
            if not latency.empty else None
        f["header_bytes"] = int(wire.loc[variant, "header_bytes"]) \
            if variant in wire.index else None
        f.update(revocation_figures(run.revocations, variant))
        replicas = mine[mine["experiment"] == "replicas"]
        for routing in ("random", "sticky"):
            routed = replicas[replicas["routing"] == routing]
            if not routed.empty:
                e = median_interval((routed["failures"] / routed["requests"]).to_numpy())
                f[f"replicas_{routing}_failure_rate"] = e.median
                f[f"replicas_{routing}_p99_ms"] = estimates(routed, "latency_us_p99").median / 1e3
        churn = mine[mine["experiment"] == "churn"]
        if not churn.empty:
            f["churn_rps"] = estimates(churn, "achieved_rps").median
            f["churn_error_rate"] = float(churn["failures"].sum() / max(1, churn["requests"].sum()))
        figures[variant] = f
    return figures


# A logged-out credential refused this soon, on every replica, was revoked by the logout;
# one refused only later was refused because it expired (or not within the window at all).
REVOKED_WITHIN_S = 0.5


def revocation_figures(revocations: pd.DataFrame, variant: str) -> dict[str, Any]:
    """How long a logged-out credential kept working, and how finely that was observed."""
    if revocations.empty or variant not in set(revocations["variant"]):
        return {"logout_revokes": None}
    observed = revocations[revocations["variant"] == variant]
    refused = observed["refused_after_s"].dropna()
    f: dict[str, Any] = {
        "logout_observations": len(observed),
        "logout_revokes": bool(len(refused) == len(observed)
                               and refused.max() <= REVOKED_WITHIN_S),
        "logout_refused_share": float(len(refused) / len(observed)),
        "logout_refused_after_s_p50": float(refused.median()) if len(refused) else None,
        "logout_refused_after_s_max": float(refused.max()) if len(refused) else None,
        "logout_window_s": float(observed["window_s"].max()),
    }
    if "resolution_s" in observed and observed["resolution_s"].notna().any():
        f["logout_resolution_s_p50"] = float(observed["resolution_s"].median())
        f["logout_resolution_s"] = float(observed["resolution_s"].max())
    if "expires_after_s" in observed and observed["expires_after_s"].notna().any():
        f["logout_expires_after_s_p50"] = float(observed["expires_after_s"].median())
    return f


def generator_bound(cells: pd.DataFrame) -> pd.Series:
    """Cells whose load generator was the limit: above 90% CPU, or under 95% of the rate.
    Their variant did not get the load the comparison is about."""
    return (cells["generator_cpu_max"] > GENERATOR_CPU_LIMIT) | \
        (cells["achieved_rps"] < RATE_SHORTFALL * cells["target_rps"])


def left_out(run: Run) -> list[dict[str, Any]]:
    """The headline cells the comparisons leave out, and why (see generator_bound)."""
    cells = headline(run.table)
    if cells.empty:
        return []
    out = cells[generator_bound(cells)]
    return [{"variant": r.variant, "repetition": int(r.repetition),
             "target_rps": float(r.target_rps), "achieved_rps": round(float(r.achieved_rps), 1),
             "generator_cpu_max": float(r.generator_cpu_max)} for r in out.itertuples()]
