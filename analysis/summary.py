"""From a run's tidy tables to its figures per variant, with their spread, and the verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import Run, Variants
from analysis.stats import (
    EQUIVALENT,
    HIGHER,
    INCONCLUSIVE,
    LOWER,
    UNDETERMINED,
    Estimate,
    LinearFit,
    difference,
    linear_fit,
    median_interval,
    min_count_for,
)

CLAIM = ("token based authentication scales better than that of a session because tokens "
         "are stored on the client side while session makes use of the server memory so it "
         "might become an issue when there is a large number of users using the system at "
         "once.")
GENERATOR_CPU_LIMIT = 90.0
# The latency experiment's phases (loadtests/experiments/latency.py), and the population's
# login storm (loadtests/experiments/population.py).
SATURATION, COMMON, KNEE, STORM = "saturation", "common", "knee", "storm"
# Each population step as it ran: flat out, the common rate, then the storm.
STEP_ORDER = {SATURATION: 0, COMMON: 1, STORM: 2}
PERCENTILES = ("p50", "p90", "p99", "p99.9")
RATE_SHORTFALL = 0.95


def nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, np.floating | np.integer):
        return nan_to_none(value.item())
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nan_to_none(v) for v in value]
    return value


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


def population_curve(run: Run) -> pd.DataFrame:
    """The population experiment's fast-generator cells: at each number of live users, flat
    out and at the common rate (over all N seeded sessions, uniformly or a hot set, or over
    the logged-in users), then any login storm, with the server's garbage-collector pauses
    in each window. Medians over repetitions (the longest wait and pauses: their maximum);
    a percentile only where the cells hold enough requests for it."""
    table = run.table
    if table.empty or "distribution" not in table:
        return pd.DataFrame()
    cells = table[(table["experiment"] == "population") & (table["status"] == "ok")
                  & table["distribution"].notna()]
    if cells.empty:
        return pd.DataFrame()
    order = {v: i for i, v in enumerate(run.variants.ordered(cells["variant"]))}
    rows = []
    keys = ["variant", "remedy", "population", "phase", "distribution"]
    for (variant, remedy, population, phase, distribution), group in cells.groupby(
            keys, sort=False):
        requests = int(group["measured_requests"].sum())
        row: dict[str, Any] = {
            "variant": variant, "remedy": remedy, "population": int(population),
            "phase": phase, "distribution": distribution, "requests": requests,
            "target_rps": float(group["target_rps"].median()),
            "achieved_rps": float(group["achieved_rps"].median()),
            "error_rate": float(group["error_rate"].median()),
            "server_cpu_us_per_request": float(group["server_cpu_us_per_request"].median()),
            "gc_pause_ms": float(group["gc_pause_ms"].max()),
            "gc_full_pauses": float(group["gc_full_pauses"].max()),
            "gc_full_pause_ms": float(group["gc_full_pause_ms"].max()),
            "gc_longest_pause_ms": float(group["gc_longest_pause_ms"].max()),
            "gc_longest_ever_ms": float(group["gc_longest_ever_ms"].max()),
            # The reads' longest wait: where a stall of the event loop shows in full.
            "max_ms": float(group["latency_us_max"].max()) / 1000,
            "order": order[variant], "phase_order": STEP_ORDER[phase]}
        row.update(login_churn(group))
        row.update(shown_ms(requests, group[LATENCY_COLUMNS].median()))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(
        ["order", "remedy", "population", "phase_order"]).drop(
        columns=["order", "phase_order"]).reset_index(drop=True)


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
    intercept, in cores) and a marginal cost (the slope, in us per request)."""
    table = run.table
    knee = phase_cells(table, KNEE)
    if not knee.empty:
        knee = knee[knee["fraction"] <= 1.0]
    cells = pd.concat([phase_cells(table, COMMON), knee])
    model: dict[str, dict[str, Any]] = {}
    if cells.empty:
        return model
    for variant, mine in cells.groupby("variant", sort=False):
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
    variants = list(dict.fromkeys(table["variant"])) if not table.empty else []
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


# The session-versus-token comparisons the verdict rests on, declared before measuring (and
# recorded in every run's manifest); docs/methodology.md gives the reasons at length.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("session-memory", "jwt-hs256",
     "the claim's own picture: sessions in server memory against the cheapest stateless "
     "token"),
    ("session-redis", "jwt-hs256-revocable",
     "one Redis round trip per request each: a shared session store against a token that "
     "can be revoked, which is what logout needs"),
    ("session-cookie", "jwt-hs256",
     "both keep the session on the client under a symmetric key: an encrypted cookie "
     "against a signed token"),
)
# "No measurable difference" means the whole interval on the ratio lies within this.
EQUIVALENCE_MARGIN = 0.10
# Per-repetition figures compared in each pair (lower is better for all): axis, summary
# key, the table's column, its scale to the key's unit, the percentile its cells need
# enough requests for.
PAIR_FIGURES = (
    ("capacity per server core (flat out)", "capacity_rps", "achieved_rps", 1.0, 0.0,
     SATURATION, "higher"),
    ("CPU per request (server + Redis CPU time)", "cpu_us_per_request",
     "cpu_total_us_per_request", 1.0, 0.0, COMMON, "lower"),
    ("time spent authenticating (Server-Timing p50)", "auth_us_p50", "auth_us_p50", 1.0, 50.0,
     COMMON, "lower"),
    ("latency at equal load (p99)", "latency_ms_p99", "latency_us_p99", 1e-3, 99.0, COMMON,
     "lower"),
)
# A pair without usable cells: too few requests for the percentile, or generator-bound.
TOO_FEW = "not comparable"
SERVICE_AXIS = "service as live users grow"
# What counts as a service degraded from the fewest live users measured to the most: its
# flat-out capacity down by more than this share, or its p99 at the common rate up by more
# than this factor and by more than this many ms (below that, sub-millisecond noise).
SERVICE_CAPACITY_MARGIN = 0.20
SERVICE_P99_FACTOR = 2.0
SERVICE_P99_FLOOR_MS = 1.0
ALL_AXES = ("memory per live user", SERVICE_AXIS, *(f[0] for f in PAIR_FIGURES),
            "bytes on the wire per request", "scaling out without sticky routing",
            "logout (revocation)")
NOT_MEASURED = "not measured"


def per_repetition(cells: pd.DataFrame, variant: str, column: str,
                   percentile: float) -> dict[int, float]:
    """A variant's figure at the headline rate, repetition by repetition (cells with too
    few requests for the percentile left out)."""
    mine = cells[(cells["variant"] == variant)
                 & (cells["measured_requests"] >= min_count_for(percentile))]
    return {int(r): float(v) for r, v in zip(mine["repetition"], mine[column], strict=True)}


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


def pair_comparisons(run: Run) -> list[dict[str, Any]]:
    """For each declared pair and figure: token / session over paired repetitions, with its
    interval, real coverage and verdict against the equivalence margin. Generator-bound
    cells are left out: a comparison at unequal load is no comparison."""
    by_phase = {COMMON: headline(run.table), SATURATION: phase_cells(run.table, SATURATION)}
    rows = []
    for session, token, reason in PAIRS:
        for axis, key, column, scale, percentile, phase, better in PAIR_FIGURES:
            everything = by_phase[phase]
            cells = everything[~generator_bound(everything)] if not everything.empty \
                else everything
            if everything.empty or not {session, token} <= set(everything["variant"]):
                continue
            if not {session, token} <= set(cells["variant"]):
                rows.append({"session": session, "token": token, "reason": reason,
                             "axis": axis, "figure": key, "better": better,
                             "verdict": TOO_FEW,
                             "detail": "every cell generator-bound: the generator, not the "
                                       "server, set the load"})
                continue
            a = per_repetition(cells, session, column, percentile)
            b = per_repetition(cells, token, column, percentile)
            if not a or not b:
                rows.append({"session": session, "token": token, "reason": reason,
                             "axis": axis, "figure": key, "better": better,
                             "verdict": TOO_FEW,
                             "detail": f"fewer than {min_count_for(percentile):,} requests "
                                       f"per cell for it"})
                continue
            d = difference(a, b, EQUIVALENCE_MARGIN)
            rows.append({"session": session, "token": token, "reason": reason, "axis": axis,
                         "figure": key, "better": better,
                         "session_median": median_interval(list(a.values())).median * scale,
                         "token_median": median_interval(list(b.values())).median * scale,
                         **d.as_dict()})
    return rows


def pair_axis(axis: str, rows: list[dict[str, Any]], pattern: str) -> dict[str, Any]:
    """One verdict axis from its pair comparisons: the claim holds where the token side is
    better beyond the margin in every pair (lower, or higher for capacity), fails where it
    is worse in every pair."""
    mine = [r for r in rows if r["axis"] == axis]
    if not mine:
        return {"axis": axis, "holds": NOT_MEASURED, "sessions": "", "tokens": "",
                "detail": "no pair measured on this axis"}
    verdicts = {r["verdict"] for r in mine}
    if TOO_FEW in verdicts:
        return {"axis": axis, "holds": f"undetermined ({mine[0]['detail']})",
                "sessions": "", "tokens": "", "detail": "; ".join(
                    f"{r['token']} / {r['session']}: {r.get('detail') or r['verdict']}"
                    for r in mine)}
    # The claim is that tokens do better: lower CPU and latency, higher capacity.
    good, bad = (HIGHER, LOWER) if mine[0].get("better") == "higher" else (LOWER, HIGHER)
    if verdicts == {good}:
        holds = "yes"
    elif verdicts == {bad}:
        holds = "no"
    elif verdicts == {EQUIVALENT}:
        holds = EQUIVALENT
    elif UNDETERMINED in verdicts:
        holds = "undetermined (one repetition: no interval)"
    elif verdicts <= {LOWER, HIGHER, EQUIVALENT}:
        holds = "depends on the pair"
    else:
        holds = INCONCLUSIVE
    detail = "; ".join(
        f"{r['token']} / {r['session']}: {r['ratio']:.2f}x [{r['ratio_low']:.2f}, "
        f"{r['ratio_high']:.2f}] ({r['coverage']:.1%} coverage, {r['pairs']} pairs): "
        f"{describe(r['verdict'], r['token'])}" for r in mine)
    # A variant in two pairs is listed once.
    sessions = {r["session"]: r["session_median"] for r in mine}
    tokens = {r["token"]: r["token_median"] for r in mine}
    return {"axis": axis, "holds": holds, "sessions": _fmt(list(sessions.items()), pattern),
            "tokens": _fmt(list(tokens.items()), pattern), "detail": detail}


def service_change(population: pd.DataFrame, variant: str) -> dict[str, Any] | None:
    """A variant's service from the fewest live users to the most (its plain arm, requests
    over all N users, or the logged-in ones): flat-out capacity and common-rate p99 at
    both ends, their ratios, and whether either moved beyond the margin. None without two
    sizes measured with a p99."""
    if population.empty:
        return None
    mine = population[(population["variant"] == variant) & (population["remedy"] == "")
                      & (population["distribution"] != "zipf")]
    flat = mine[mine["phase"] == SATURATION].set_index("population")["achieved_rps"]
    common = mine[mine["phase"] == COMMON].dropna(subset=["p99_ms"])
    common = common.set_index("population")["p99_ms"]
    sizes = sorted(set(flat.index) & set(common.index))
    if len(sizes) < 2:
        return None
    fewest, most = sizes[0], sizes[-1]
    capacity = float(flat[most] / flat[fewest])
    p99 = float(common[most] / common[fewest])
    degraded = (capacity < 1 - SERVICE_CAPACITY_MARGIN) or (
        p99 > SERVICE_P99_FACTOR and common[most] - common[fewest] > SERVICE_P99_FLOOR_MS)
    return {"variant": variant, "fewest": int(fewest), "most": int(most),
            "capacity_ratio": capacity, "p99_ratio": p99,
            "p99_ms": [float(common[fewest]), float(common[most])], "degraded": degraded}


def service_axis(population: pd.DataFrame, sessions_group: tuple[str, ...],
                 tokens_group: tuple[str, ...]) -> dict[str, Any] | None:
    """The claim's "large number of users at once": it holds where a server-side session
    store's service degrades beyond the margin as live users grow and no stateless token's
    does; None where the run lacks either side."""
    changes = {v: service_change(population, v) for v in (*sessions_group, *tokens_group)}
    sessions = [c for v, c in changes.items() if c and v in sessions_group]
    tokens = [c for v, c in changes.items() if c and v in tokens_group]
    if not sessions or not tokens:
        return None

    def words(c: dict[str, Any]) -> str:
        return (f"{c['variant']}: capacity {c['capacity_ratio']:.2f}x, p99 "
                f"{c['p99_ratio']:.2f}x ({c['p99_ms'][0]:.2f} to {c['p99_ms'][1]:.2f} ms)"
                + (" degraded" if c["degraded"] else ""))

    holds = "yes" if any(c["degraded"] for c in sessions) and \
        not any(c["degraded"] for c in tokens) else "no"
    span = f"{min(c['fewest'] for c in sessions + tokens):,} to " \
           f"{max(c['most'] for c in sessions + tokens):,} live users"
    churn = " with login churn" if population.get("logins", pd.Series(dtype=float)).fillna(
        0).sum() > 0 else ""
    return {"axis": SERVICE_AXIS, "holds": holds,
            "sessions": "; ".join(words(c) for c in sessions),
            "tokens": "; ".join(words(c) for c in tokens),
            "detail": f"from {span}: flat-out capacity, and p99 at the common rate{churn}; "
                      f"degraded means capacity down more than "
                      f"{SERVICE_CAPACITY_MARGIN:.0%}, or p99 up more than "
                      f"{SERVICE_P99_FACTOR:g}x and by more than {SERVICE_P99_FLOOR_MS:g} ms "
                      f"(one repetition per step: a stated margin, not an interval); "
                      + ("some session store degraded and no token did" if holds == "yes"
                         else "no session store degraded beyond the margin"
                         if not any(c["degraded"] for c in sessions)
                         else "tokens degraded too")}


def describe(verdict: str, token: str) -> str:
    return {LOWER: f"{token} lower", HIGHER: f"{token} higher"}.get(verdict, verdict)


def verdict(figures: dict[str, dict[str, Any]], memory_bytes: int | None,
            variants: Variants, pairs: list[dict[str, Any]],
            population: pd.DataFrame | None = None) -> dict[str, Any]:
    """One row per axis, each with the measured numbers and whether the claim holds there;
    an axis this run could not measure says so."""
    sessions_group, tokens_group = variants.server_sessions, variants.stateless_tokens
    axes: dict[str, dict[str, Any]] = {}
    service = service_axis(population if population is not None else pd.DataFrame(),
                           sessions_group, tokens_group)
    if service is not None:
        axes[SERVICE_AXIS] = service

    # Memory per live user.
    sessions = [(v, figures[v]["bytes_per_session"]) for v in sessions_group
                if figures.get(v, {}).get("bytes_per_session") is not None]
    tokens = [(v, figures[v]["bytes_per_session"]) for v in tokens_group
              if figures.get(v, {}).get("bytes_per_session") is not None]
    if sessions and tokens:
        worst_session = max(sessions, key=lambda i: i[1])
        worst_token = max(tokens, key=lambda i: i[1])
        million_mb = worst_session[1] * 1e6 / 2**20
        share = (worst_session[1] * 1e6 / memory_bytes) if memory_bytes else None
        holds = "yes" if worst_session[1] > max(64.0, 4 * max(worst_token[1], 0.0)) else "no"
        detail = (f"{worst_session[0]} keeps {worst_session[1]:.0f} B per live session "
                  f"({million_mb:.0f} MiB per million users"
                  + (f", {share:.1%} of this machine's memory" if share is not None else "")
                  + f"); {worst_token[0]} {worst_token[1]:.0f} B per user")
        axes["memory per live user"] = {
            "axis": "memory per live user", "sessions": _fmt(sessions, "{:.0f} B"),
            "tokens": _fmt(tokens, "{:.0f} B"), "holds": holds, "detail": detail}

    for axis, key, *_ in PAIR_FIGURES:
        pattern = "{:.2f} ms" if key.startswith("latency_ms") else (
            "{:,.0f} req/s" if key == "capacity_rps" else "{:.1f} µs")
        axes[axis] = pair_axis(axis, pairs, pattern)

    # Bytes on the wire.
    s_bytes = [(v, figures[v]["header_bytes"]) for v in sessions_group
               if figures.get(v, {}).get("header_bytes") is not None]
    t_bytes = [(v, figures[v]["header_bytes"]) for v in tokens_group
               if figures.get(v, {}).get("header_bytes") is not None]
    if s_bytes and t_bytes:
        largest_token, smallest_cookie = max(b for _, b in t_bytes), min(b for _, b in s_bytes)
        holds = "yes" if largest_token <= smallest_cookie else "no"
        axes["bytes on the wire per request"] = {
            "axis": "bytes on the wire per request", "sessions": _fmt(s_bytes, "{} B"),
            "tokens": _fmt(t_bytes, "{} B"), "holds": holds,
            "detail": f"a token costs up to {largest_token / smallest_cookie:.1f}x the bytes "
                      "of a session cookie on every request"}

    # Scaling out without a shared store.
    random_rates = {v: figures[v].get("replicas_random_failure_rate") for v in figures
                    if figures[v].get("replicas_random_failure_rate") is not None}
    in_memory = [v for v in sessions_group if variants.facts[v]["state"] == "process"]
    shared_store = [v for v in sessions_group if variants.facts[v]["state"] == "redis"]
    mem = max((random_rates[v] for v in in_memory if v in random_rates), default=None)
    shared = max((random_rates[v] for v in shared_store if v in random_rates), default=None)
    tok = [random_rates[v] for v in tokens_group if v in random_rates]
    if mem is not None and tok:
        holds = ("only without a shared store" if mem > 0.05 and (shared is None or
                                                                   shared < 0.01)
                 else ("yes" if mem > 0.05 else "no"))
        axes["scaling out without sticky routing"] = {
            "axis": "scaling out without sticky routing",
            "sessions": _fmt([(v, r) for v, r in random_rates.items() if v in sessions_group],
                             "{:.0%} failed"),
            "tokens": _fmt([(v, r) for v, r in random_rates.items() if v in tokens_group],
                           "{:.0%} failed"),
            "holds": holds,
            "detail": f"in-memory sessions fail {mem:.0%} of requests on random replicas"
                      + (f"; Redis-backed sessions {shared:.0%}" if shared is not None else "")
                      + f"; tokens {max(tok):.0%}"}

    # Logout.
    revokes = {v: figures[v]["logout_revokes"] for v in figures
               if figures[v].get("logout_revokes") is not None}
    if any(v in revokes for v in tokens_group):
        def words(v: str) -> str:
            f = figures[v]
            if revokes[v]:
                return f"refused after {f['logout_refused_after_s_max'] * 1000:.0f} ms"
            accepted = f.get("logout_refused_after_s_p50")
            return (f"accepted {accepted:.1f} s, until it expired" if accepted is not None
                    else f"accepted for the whole {f['logout_window_s']:g} s window")
        others = [f"{v}: {words(v)}" for v in revokes if v not in sessions_group + tokens_group]
        axes["logout (revocation)"] = {
            "axis": "logout (revocation)",
            "sessions": "; ".join(f"{v}: {words(v)}" for v in sessions_group if v in revokes),
            "tokens": "; ".join(f"{v}: {words(v)}" for v in tokens_group if v in revokes),
            "holds": "no" if any(revokes.get(v) is False for v in tokens_group) else "n/a",
            "detail": "stateless tokens keep working after logout until they expire; "
                      "revoking them needs server-side state again"
                      + (f" ({'; '.join(others)})" if others else "")}
    rows = [axes.get(a) or {"axis": a, "holds": NOT_MEASURED, "sessions": "", "tokens": "",
                            "detail": "this run has no data for it"} for a in ALL_AXES]
    return {"claim": CLAIM, "axes": rows, "conclusion": conclusion(rows),
            "equivalence_margin": EQUIVALENCE_MARGIN,
            "pairs": [{"session": a, "token": b, "reason": why} for a, b, why in PAIRS]}


def _fmt(items: list[tuple[str, Any]], pattern: str) -> str:
    return ", ".join(f"{v}: {pattern.format(x)}" for v, x in items)


def conclusion(axes: list[dict[str, Any]]) -> str:
    """A short plain-language conclusion built only from the axis rows above. With an axis
    not measured, no overall verdict: a claim is not judged on the axes that happened to
    run."""
    def named(test: Any) -> list[str]:
        return [a["axis"] + ("" if a["holds"] in ("yes", "no", EQUIVALENT) else
                             f" ({a['holds']})") for a in axes if test(a["holds"])]

    holds = named(lambda h: h == "yes")
    fails = named(lambda h: h == "no")
    conditional = named(lambda h: h.startswith("only"))
    ties = named(lambda h: h == EQUIVALENT)
    open_ = named(lambda h: h.startswith(("undetermined", INCONCLUSIVE, "depends")))
    missing = [a["axis"] for a in axes if a["holds"] == NOT_MEASURED]
    parts = []
    if holds:
        parts.append("The claim holds on " + ", ".join(holds) + ".")
    if conditional:
        parts.append("It holds conditionally on " + ", ".join(conditional) + ".")
    if fails:
        parts.append("It does not hold on " + ", ".join(fails) + ".")
    if ties:
        parts.append(f"There is no measurable difference (within ±{EQUIVALENCE_MARGIN:.0%}) "
                     "on " + ", ".join(ties) + ".")
    if open_:
        parts.append("Not decided: " + ", ".join(open_) + ".")
    memory = next((a for a in axes if a["axis"] == "memory per live user"
                   and a["holds"] != NOT_MEASURED), None)
    if memory is not None:
        parts.append("Memory: " + memory["detail"] + ".")
    if missing:
        return (f"No overall verdict: this run did not measure {', '.join(missing)}. "
                + " ".join(parts)).strip()
    if holds and not (fails or conditional):
        overall = "true on every axis measured"
    elif holds or conditional:
        overall = "true only on " + ", ".join(holds + conditional)
    else:
        overall = "false on every axis measured"
    return f"Overall: {overall}. " + " ".join(parts)


def summarize(run: Run) -> dict[str, Any]:
    run.require_data()
    figures = variant_figures(run)
    memory = run.manifest.get("machine", {}).get("memory_bytes")
    pairs = pair_comparisons(run)
    population = population_curve(run)
    return nan_to_none({
        "run_id": run.manifest.get("run_id"),
        "status": run.manifest.get("status"),
        "profile": run.manifest.get("profile"),
        "variants": figures,
        "latency_curve": latency_curve(run).to_dict(orient="records"),
        "knee_curve": knee_curve(run).to_dict(orient="records"),
        "population_curve": population.to_dict(orient="records"),
        "connections_curve": connections_curve(run).to_dict(orient="records"),
        "common_rates": run.manifest.get("latency", {}).get("common_rates"),
        "capacities": run.manifest.get("latency", {}).get("capacities"),
        "pairs": pairs,
        "left_out": left_out(run),
        "verdict": verdict(figures, memory, run.variants, pairs, population),
    })
