"""From a run's tidy tables to its figures per variant, with their spread, and the verdict."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import Run, Variants
from analysis.stats import Estimate, LinearFit, linear_fit, median_interval

CLAIM = ("token based authentication scales better than that of a session because tokens "
         "are stored on the client side while session makes use of the server memory so it "
         "might become an issue when there is a large number of users using the system at "
         "once.")
GENERATOR_CPU_LIMIT = 90.0
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
    """Per variant and target rate: each percentile's median and interval over repetitions."""
    table = run.table
    latency = table[(table["experiment"] == "latency") & (table["status"] == "ok")]
    rows = []
    for (variant, rate), group in latency.groupby(["variant", "target_rps"], sort=False):
        row: dict[str, Any] = {"variant": variant, "target_rps": float(rate),
                               "repetitions": len(group)}
        for p in ("p50", "p90", "p99", "p99.9"):
            e = estimates(group, f"latency_us_{p}")
            row.update({f"{p}_ms": e.median / 1000, f"{p}_ms_low": e.low / 1000,
                        f"{p}_ms_high": e.high / 1000})
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


def variant_figures(run: Run) -> dict[str, dict[str, Any]]:
    table = run.table
    fits = memory_fits(run)
    wire = run.wire.set_index("variant") if not run.wire.empty else pd.DataFrame()
    revocations = run.revocations
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
        if not latency.empty:
            lowest = latency[latency["target_rps"] == latency["target_rps"].min()]
            highest = latency[latency["target_rps"] == latency["target_rps"].max()]
            for name, frame, column, scale in (
                    ("auth_us_p50", lowest, "auth_us_p50", 1.0),
                    ("auth_us_p99", lowest, "auth_us_p99", 1.0),
                    ("latency_ms_p50", highest, "latency_us_p50", 1e-3),
                    ("latency_ms_p99", highest, "latency_us_p99", 1e-3),
                    ("rps", highest, "achieved_rps", 1.0),
                    ("cpu_us_per_request", highest, "server_cpu_us_per_request", 1.0)):
                e = estimates(frame, column)
                f[name] = e.median * scale
                f[f"{name}_interval"] = [e.low * scale, e.high * scale]
                f[f"{name}_coverage"] = e.coverage
            f["target_rps"] = float(highest["target_rps"].iloc[0])
            f["error_rate"] = float(latency["failures"].sum() / max(1, latency["requests"].sum()))
            f["generator_bound"] = bool(
                (highest["generator_cpu_max"] > GENERATOR_CPU_LIMIT).any()
                or (f["rps"] < RATE_SHORTFALL * f["target_rps"]))
        else:
            for name in ("auth_us_p50", "auth_us_p99", "latency_ms_p50", "latency_ms_p99",
                         "rps", "cpu_us_per_request", "error_rate"):
                f[name] = None
        f["header_bytes"] = int(wire.loc[variant, "header_bytes"]) \
            if variant in wire.index else None
        f["logout_revokes"] = None
        if not revocations.empty and variant in set(revocations["variant"]):
            observed = revocations[revocations["variant"] == variant]
            refused = observed["refused_after_s"].notna()
            f["logout_revokes"] = bool(refused.all())
            f["logout_refused_share"] = float(refused.mean())
            f["logout_still_accepted_s"] = (None if refused.all()
                                            else float(observed["window_s"].max()))
            f["logout_refused_after_s_max"] = (float(observed["refused_after_s"].max())
                                               if refused.any() else None)
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


def _best(figures: dict[str, dict[str, Any]], group: tuple[str, ...], key: str
          ) -> tuple[str, float] | None:
    present = [(v, figures[v][key]) for v in group if v in figures and figures[v].get(key)
               is not None]
    return min(present, key=lambda item: item[1]) if present else None


def _interval(figures: dict[str, dict[str, Any]], variant: str, key: str) -> Estimate | None:
    f = figures.get(variant, {})
    if f.get(key) is None or not f.get(f"{key}_interval"):
        return None
    low, high = f[f"{key}_interval"]
    return Estimate(f[key], low, high, f.get(f"{key}_coverage", 0.0), 0)


def verdict(figures: dict[str, dict[str, Any]], memory_bytes: int | None,
            variants: Variants) -> dict[str, Any]:
    """One row per axis, each with the measured numbers and whether the claim holds there."""
    axes: list[dict[str, Any]] = []
    sessions_group, tokens_group = variants.server_sessions, variants.stateless_tokens

    # 1. Memory per live user.
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
        axes.append({"axis": "memory per live user", "sessions": _fmt(sessions, "{:.0f} B"),
                     "tokens": _fmt(tokens, "{:.0f} B"), "holds": holds, "detail": detail})

    # 2. CPU per request (the server's own auth time).
    axes.append(_compare_axis(figures, variants, "CPU per request (server auth time, p50)",
                              "auth_us_p50", "{:.1f} µs", lower_is_better=True))
    # 3. Latency at equal load.
    axes.append(_compare_axis(figures, variants,
                              "latency at equal load (p99 at the highest rate)",
                              "latency_ms_p99", "{:.2f} ms", lower_is_better=True))
    # 4. Bytes on the wire.
    s_bytes = [(v, figures[v]["header_bytes"]) for v in sessions_group
               if figures.get(v, {}).get("header_bytes") is not None]
    t_bytes = [(v, figures[v]["header_bytes"]) for v in tokens_group
               if figures.get(v, {}).get("header_bytes") is not None]
    if s_bytes and t_bytes:
        largest_token, smallest_cookie = max(b for _, b in t_bytes), min(b for _, b in s_bytes)
        holds = "yes" if largest_token <= smallest_cookie else "no"
        axes.append({"axis": "bytes on the wire per request", "sessions": _fmt(s_bytes, "{} B"),
                     "tokens": _fmt(t_bytes, "{} B"), "holds": holds,
                     "detail": f"a token costs up to {largest_token / smallest_cookie:.1f}x "
                               "the bytes of a session cookie on every request"})
    # 5. Scaling out without a shared store.
    random_rates = {v: figures[v].get("replicas_random_failure_rate") for v in figures
                    if figures[v].get("replicas_random_failure_rate") is not None}
    if random_rates:
        mem = random_rates.get("session-memory")
        shared = random_rates.get("session-redis")
        tok = [random_rates[v] for v in tokens_group if v in random_rates]
        holds = ("only without a shared store" if mem is not None and mem > 0.05 and
                 (shared is None or shared < 0.01) else ("yes" if mem and mem > 0.05 else "no"))
        axes.append({"axis": "scaling out without sticky routing",
                     "sessions": _fmt([(v, r) for v, r in random_rates.items()
                                       if v in sessions_group], "{:.0%} failed"),
                     "tokens": _fmt([(v, r) for v, r in random_rates.items()
                                     if v in tokens_group], "{:.0%} failed"),
                     "holds": holds,
                     "detail": (f"in-memory sessions fail {mem:.0%} of requests on random "
                                "replicas" if mem is not None else "")
                     + (f"; Redis-backed sessions {shared:.0%}" if shared is not None else "")
                     + (f"; tokens {max(tok):.0%}" if tok else "")})
    # 6. Logout.
    revokes = {v: figures[v].get("logout_revokes") for v in figures
               if figures[v].get("logout_revokes") is not None}
    if revokes:
        words = {True: "revokes", False: "still accepted"}
        others = [f"{v} {words[r]}" for v, r in revokes.items()
                  if v not in sessions_group + tokens_group]
        axes.append({"axis": "logout (revocation)",
                     "sessions": _fmt([(v, words[r]) for v, r in revokes.items()
                                       if v in sessions_group], "{}"),
                     "tokens": _fmt([(v, words[r]) for v, r in revokes.items()
                                     if v in tokens_group], "{}"),
                     "holds": "no" if any(revokes.get(v) is False for v in tokens_group)
                     else "n/a",
                     "detail": "stateless tokens keep working after logout until they expire; "
                               "revoking them needs server-side state again"
                               + (f" ({'; '.join(others)})" if others else "")})
    axes = [a for a in axes if a is not None]
    return {"claim": CLAIM, "axes": axes, "conclusion": conclusion(axes)}


def _fmt(items: list[tuple[str, Any]], pattern: str) -> str:
    return ", ".join(f"{v}: {pattern.format(x)}" for v, x in items)


def _compare_axis(figures: dict[str, dict[str, Any]], variants: Variants, axis: str, key: str,
                  pattern: str, lower_is_better: bool) -> dict[str, Any] | None:
    sessions_group, tokens_group = variants.server_sessions, variants.stateless_tokens
    best_session = _best(figures, sessions_group, key)
    best_token = _best(figures, tokens_group, key)
    if best_session is None or best_token is None:
        return None
    s = _interval(figures, best_session[0], key)
    t = _interval(figures, best_token[0], key)
    # One repetition gives no interval (coverage 0). Several that agree to the microsecond
    # (auth times are recorded in whole microseconds) give a zero-width one, which is fine.
    if s is None or t is None or s.coverage == 0 or t.coverage == 0:
        holds, detail = "undetermined (one repetition: no interval)", (
            f"{best_session[0]} {pattern.format(best_session[1])} vs {best_token[0]} "
            f"{pattern.format(best_token[1])}")
    elif s.overlaps(t):
        holds, detail = "no measurable difference", (
            f"best session ({best_session[0]}) and best token ({best_token[0]}) intervals "
            "overlap")
    elif best_token[1] < best_session[1]:
        holds = "yes"
        detail = (f"{best_token[0]} {pattern.format(best_token[1])} vs {best_session[0]} "
                  f"{pattern.format(best_session[1])}")
    else:
        holds = "no"
        detail = (f"{best_session[0]} {pattern.format(best_session[1])} vs {best_token[0]} "
                  f"{pattern.format(best_token[1])}: the session is cheaper")
    sessions = [(v, figures[v][key]) for v in sessions_group if figures.get(v, {}).get(key)
                is not None]
    tokens = [(v, figures[v][key]) for v in tokens_group if figures.get(v, {}).get(key)
              is not None]
    return {"axis": axis, "sessions": _fmt(sessions, pattern), "tokens": _fmt(tokens, pattern),
            "holds": holds, "detail": detail}


def conclusion(axes: list[dict[str, Any]]) -> str:
    """A short plain-language conclusion built only from the axis rows above."""
    holds = [a["axis"] for a in axes if a["holds"] == "yes"]
    fails = [a["axis"] for a in axes if a["holds"] == "no"]
    conditional = [f"{a['axis']} ({a['holds']})" for a in axes
                   if a["holds"].startswith("only")]
    undetermined = [a["axis"] for a in axes if a["holds"].startswith("undetermined")]
    ties = [a["axis"] for a in axes if a["holds"] == "no measurable difference"]
    parts = []
    if holds:
        parts.append("The claim holds on " + ", ".join(holds) + ".")
    if conditional:
        parts.append("It holds conditionally on " + ", ".join(conditional) + ".")
    if fails:
        parts.append("It does not hold on " + ", ".join(fails) + ".")
    if ties:
        parts.append("There is no measurable difference on " + ", ".join(ties) + ".")
    if undetermined:
        parts.append("Too few repetitions to decide " + ", ".join(undetermined) + ".")
    memory = next((a for a in axes if a["axis"] == "memory per live user"), None)
    if memory is not None:
        parts.append("Memory: " + memory["detail"] + ".")
    if not parts:
        return "This run has too little data for a verdict."
    if holds and not (fails or conditional):
        overall = "true on every axis measured"
    elif holds or conditional:
        overall = "true only on " + ", ".join(holds + conditional)
    else:
        overall = "false on every axis measured"
    return f"Overall: {overall}. " + " ".join(parts)


def summarize(run: Run) -> dict[str, Any]:
    figures = variant_figures(run)
    memory = run.manifest.get("machine", {}).get("memory_bytes")
    return nan_to_none({
        "run_id": run.manifest.get("run_id"),
        "status": run.manifest.get("status"),
        "profile": run.manifest.get("profile"),
        "variants": figures,
        "latency_curve": latency_curve(run).to_dict(orient="records"),
        "verdict": verdict(figures, memory, run.variants),
    })
