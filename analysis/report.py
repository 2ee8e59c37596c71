"""report.md and report.html from a run's figures: one list of blocks, rendered twice."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.charts import EXTRAPOLATE_TO
from analysis.load import Run, read_json
from analysis.summary import TOO_FEW


@dataclass
class Block:
    kind: str  # h1, h2, p, quote, table, image, list
    content: Any
    caption: str = ""


def fmt(value: Any, pattern: str = "{:.2f}", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return missing
    return pattern.format(value)


def table_block(columns: Sequence[str], rows: list[Sequence[Any]], caption: str = "") -> Block:
    return Block("table", (list(columns), [[str(c) for c in r] for r in rows]), caption)


@dataclass(frozen=True)
class Prices:
    """What the cost model charges, settable (python -m analysis RUN --price-...)."""

    gib_month: float = 3.00  # memory, per GiB-month
    vcpu_hour: float = 0.04  # one core, per hour
    gb: float = 0.09  # bytes carried on the wire, per GB


HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
# Below this a primitive's cost is under the resolution of the auth histograms (whole
# microseconds): a ratio to it would divide by the timer's rounding.
AUTH_RESOLUTION_US = 1.0


def build_blocks(run: Run, summary: dict[str, Any], charts: dict[str, Path],
                 primitives: pd.DataFrame, users: float, rps: float,
                 requests_per_day: float, prices: Prices) -> list[Block]:
    manifest = run.manifest
    figures = summary["variants"]
    variants = run.variants.ordered(figures)
    verdict = summary["verdict"]
    margin = verdict.get("equivalence_margin", 0.1)
    blocks = [Block("h1", f"authscale report: run {manifest.get('run_id')}")]
    blocks.append(Block("quote", "“" + verdict["claim"] + "”"))
    blocks.append(Block("h2", "Verdict"))
    blocks.append(table_block(("axis", "server-side sessions", "stateless tokens",
                               "claim holds?", "measured"),
                              [(a["axis"], a["sessions"], a["tokens"], a["holds"], a["detail"])
                               for a in verdict["axes"]]))
    blocks.append(Block("p", verdict["conclusion"]))
    git = manifest.get("git", {})
    machine = manifest.get("machine", {})
    pinning = manifest.get("pinning", {})
    blocks.append(Block("p", (
        f"Profile `{manifest.get('profile')}`, status **{manifest.get('status')}** "
        f"({manifest.get('status_detail')}), commit `{(git.get('commit') or '?')[:12]}`"
        f"{' (uncommitted changes)' if git.get('dirty') else ''}, "
        f"{manifest.get('started_at')} to {manifest.get('ended_at')}. Machine: "
        f"{machine.get('cpu_model')}, {machine.get('logical_cores')} cores, "
        f"{fmt((machine.get('memory_bytes') or 0) / 2**30, '{:.1f}')} GiB. Server pinned to "
        f"CPU {pinning.get('server_cpus')}, load generator to CPU "
        f"{pinning.get('generator_cpus')}, Redis to CPU {pinning.get('redis_cpus')}. "
        f"{placement_sentence(manifest.get('placement', {}))}"
        f"Rate model: {manifest.get('rate_model')}.")))

    blocks.append(Block("h2", "The declared comparisons"))
    blocks.append(Block("p", (
        "Each session variant is compared with the token variant declared beside it before "
        "measuring (not the best of each side picked afterwards): "
        + "; ".join(f"**{p['session']} against {p['token']}**: {p['reason']}"
                    for p in verdict.get("pairs", [])) + ". "
        "Each figure is the ratio token / session, repetition by repetition (the variants "
        "run interleaved, so a repetition's two cells shared the machine's state): capacity "
        "from the flat-out (closed-loop) cells, the others at the highest common rate. The "
        "interval is the order-statistic interval on "
        "the median ratio; its coverage is the real probability that it holds the true "
        f"median (93.75% with 5 pairs). The difference counts as none only when the whole "
        f"interval lies within ±{margin:.0%}; an interval that crosses an edge of that "
        "margin is inconclusive.")))
    rows = [[f"{r['session']} → {r['token']}", r["axis"], fmt(r["session_median"], "{:,.2f}"),
             fmt(r["token_median"], "{:,.2f}"),
             f"{r['ratio']:.3f}x [{r['ratio_low']:.3f}, {r['ratio_high']:.3f}]",
             f"{r['coverage']:.1%}", str(r["pairs"]), r["verdict"]]
            for r in summary.get("pairs", []) if r["verdict"] != TOO_FEW]
    blocks.append(table_block(("pair (session → token)", "figure", "session", "token",
                               "ratio token / session [interval]", "coverage", "pairs",
                               f"verdict (margin ±{margin:.0%})"), rows,
                              "Capacity: requests/s served flat out by one server core "
                              "(higher is better); CPU: µs of process CPU time per request, "
                              "the server's plus its Redis's; time authenticating: µs "
                              "(Server-Timing p50); latency: ms (client p99). All measured "
                              "with the fast generator, authscale-loadgen."))

    blocks.append(Block("h2", "1. Memory per live user"))
    blocks.append(Block("image", charts["memory"], "Server RSS plus Redis used_memory as live "
                        "users grow, on linear axes (left) and log-log (right); the line is "
                        "the least-squares fit whose slope, bytes per live user, the legend "
                        "gives."))
    rows = []
    for v in variants:
        f = figures[v]
        b = f.get("bytes_per_session")
        interval = f.get("bytes_per_session_interval") or [None, None]
        rows.append([v, fmt(b, "{:,.0f}"), f"{fmt(interval[0], '{:,.0f}')} to "
                     f"{fmt(interval[1], '{:,.0f}')}",
                     fmt(f.get("server_bytes_per_session"), "{:,.0f}"),
                     fmt(f.get("redis_bytes_per_session"), "{:,.0f}"),
                     *[fmt(b * n / 2**30 if b is not None else None, "{:,.2f}")
                       for n in EXTRAPOLATE_TO]])
    blocks.append(table_block(("variant", "bytes/session", "95% interval of the slope",
                               "of which server", "of which Redis",
                               *[f"GiB at {n:,.0f} users" for n in EXTRAPOLATE_TO]), rows))

    blocks += population_blocks(summary, charts)

    blocks.append(Block("h2", "3. Latency at equal load"))
    blocks.append(Block("image", charts["latency"], "Client latency from microsecond HDR "
                        "histograms (warm-up excluded), measured by "
                        f"{generators(summary)}: each request timed from when it was due "
                        "(no coordinated omission); the median over repetitions, the "
                        "bar its order-statistic interval (coverage in the table)."))
    curve = pd.DataFrame(summary["latency_curve"])
    if not curve.empty:
        def cell(r: dict[str, Any], p: str) -> str:
            if r.get(f"{p}_ms") is None:
                return f"– (cells of {r['requests_min']:,} requests: too few)"
            return (f"{r[f'{p}_ms']:.3f} [{r[f'{p}_ms_low']:.3f}, {r[f'{p}_ms_high']:.3f}]")

        rows = [[r["variant"], fmt(r["target_rps"], "{:g}"), fmt(r["achieved_rps"], "{:,.0f}"),
                 f"{r['repetitions']} × {r['seconds_per_cell']:.0f} s", f"{r['coverage']:.1%}",
                 f"{r['requests_min']:,}", cell(r, "p50"), cell(r, "p99"), cell(r, "p99.9"),
                 fmt(r["error_rate"], "{:.2%}"), "yes" if r["generator_bound"] else "no"]
                for r in curve.sort_values(["target_rps", "variant"]).to_dict("records")]
        blocks.append(table_block(("variant", "target req/s", "achieved", "cells",
                                   "interval coverage", "requests per cell (fewest)", "p50 ms",
                                   "p99 ms", "p99.9 ms", "errors", "generator-bound"), rows,
                                  "A percentile is shown only when every cell holds ten "
                                  "requests beyond it (p99: 1,000; p99.9: 10,000)."))
    blocks.append(Block("p", rates_origin(manifest, summary)))
    blocks.extend(capacity_blocks(variants, figures, summary, charts))

    blocks.append(Block("h2", "5. Where the microseconds go"))
    blocks.append(Block("image", charts["auth"], "The server's own time authenticating each "
                        "request (Server-Timing, whole microseconds), as percentiles of every "
                        "request at the headline rate. Time, not CPU: while a Redis call "
                        "awaits, other requests run."))
    prims = primitives.set_index("primitive")["us_per_op"] if not primitives.empty else {}
    rows = []
    for v in variants:
        f = figures[v]
        runs, shown = run.variants.primitives(v)
        costs = [(n, prims[n]) for n in runs + shown if n in prims]
        primary = sum(prims[n] for n in runs) if runs and all(n in prims for n in runs) \
            else None
        ratio = (f["auth_us_p50"] / primary if primary and primary >= AUTH_RESOLUTION_US
                 and f.get("auth_us_p50") else None)
        rows.append([v, fmt(f.get("auth_us_p50"), "{:.1f}"), fmt(f.get("auth_us_p99"), "{:.1f}"),
                     "; ".join(f"{n}: {c:.2f} µs" for n, c in costs) or "–",
                     fmt(ratio, "{:.1f}x"), fmt(f.get("server_cpu_us_per_request"), "{:.0f}"),
                     fmt(f.get("redis_cpu_us_per_request"), "{:.0f}"),
                     fmt(f.get("capacity_cpu_us_per_request"), "{:.0f}")])
    blocks.append(table_block(("variant", "auth µs p50", "auth µs p99",
                               "primitive alone (tight loop)", "auth / primitive",
                               "server CPU µs/request", "Redis CPU µs/request",
                               "CPU µs/request flat out"), rows,
                              "Auth time (Server-Timing: time, including awaits, not CPU) "
                              "at the headline rate against the cost of the primitives the "
                              "variant's auth path runs, timed alone on the server's core. "
                              "No ratio where the primitive is under 1 µs, the auth figures' "
                              "resolution. CPU is process CPU time over the measured window "
                              "divided by the requests served in it: the server's, and its "
                              "Redis's (INFO used_cpu_user + used_cpu_sys), at the headline "
                              "rate; flat out, both together. CPU per request falls as the "
                              "rate rises (fixed costs spread over more requests)."))
    blocks.extend(calibration_blocks(run.path / "calibration.json"))

    blocks.append(Block("h2", "6. Bytes on the wire"))
    blocks.append(Block("image", charts["wire"], "The request header that carries each "
                        "credential, in bytes, and what it adds up to per day."))
    rows = [[v, fmt(figures[v].get("header_bytes"), "{}"),
             fmt(figures[v]["header_bytes"] * requests_per_day / 1e9
                 if figures[v].get("header_bytes") is not None else None, "{:,.1f}")]
            for v in variants]
    blocks.append(table_block(("variant", "bytes per request",
                               f"GB/day at {requests_per_day:,.0f} requests/day"), rows))

    blocks.append(Block("h2", "7. Scaling out: replicas without sticky routing"))
    blocks.append(Block("image", charts["replicas"], "Median over repetitions; a 0% bar is "
                        "drawn as a labelled zero, not left out."))
    rows = [[v, fmt(figures[v].get("replicas_random_failure_rate"), "{:.1%}"),
             fmt(figures[v].get("replicas_sticky_failure_rate"), "{:.1%}"),
             fmt(figures[v].get("replicas_random_p99_ms"), "{:.2f}"),
             fmt(figures[v].get("replicas_sticky_p99_ms"), "{:.2f}")]
            for v in variants if figures[v].get("replicas_random_failure_rate") is not None]
    if rows:
        blocks.append(table_block(("variant", "failed, random", "failed, sticky",
                                   "p99 ms random", "p99 ms sticky"), rows))

    blocks.append(Block("h2", "8. Logout"))
    settings = manifest.get("settings", {}).get("revocation", {})
    blocks.append(Block("image", charts["revocation"], (
        "After logout the old credential is presented to every replica every "
        f"{fmt(settings.get('probe_interval_s'), '{:g}', '?')} s until each refuses it; "
        "the bar runs to the median refusal, the whisker to the latest. Sessions and tokens "
        f"lived {fmt(settings.get('credential_ttl_s'), '{:g}', '?')} s in this experiment, "
        "so a credential logout cannot revoke is seen to expire.")))
    rows = [[v, {True: "yes", False: "no"}.get(figures[v].get("logout_revokes"), "–"),
             fmt(figures[v].get("logout_refused_after_s_p50"), "{:.4f} s"),
             fmt(figures[v].get("logout_refused_after_s_max"), "{:.4f} s"),
             fmt(figures[v].get("logout_expires_after_s_p50"), "{:.2f} s"),
             f"{fmt(figures[v].get('logout_resolution_s_p50'), '{:.4f} s')} "
             f"({fmt(figures[v].get('logout_resolution_s'), '{:.4f} s')})",
             f"{figures[v].get('logout_observations', 0)}"]
            for v in variants if figures[v].get("logout_revokes") is not None]
    if rows:
        blocks.append(table_block(("variant", "logout revokes", "refused after (median)",
                                   "refused after (latest)", "token expired after",
                                   "resolution: median (widest)", "observations"), rows,
                                  "Resolution: the gap between the last probe a replica "
                                  "accepted and its first refusal; the switch happened in it."))

    blocks.append(Block("h2", "9. Over time"))
    blocks.append(Block("image", charts["over_time"], "At the headline rate: the server's RSS "
                        "in every cell (top), and each second's p50 and p99 of the reads, from "
                        "microsecond histograms, the median over the repetitions (bottom); 0 "
                        "is the end of the warm-up."))

    blocks.append(Block("h2", "10. Cost model"))
    blocks.extend(cost_blocks(variants, figures, users, rps, prices))

    blocks.append(Block("h2", "Failures and flags"))
    failures = manifest.get("failures", [])
    flagged = [f"{r['variant']} at {r['target_rps']:g} req/s" for r in summary["latency_curve"]
               if r.get("generator_bound")]
    items = [f"{f['experiment']} / {f['variant']}: {f['reason']}" for f in failures]
    items += [f"generator-bound: {x}" for x in flagged]
    items += [f"left out of the comparisons: {c['variant']} repetition {c['repetition']}, "
              f"{fmt(c['achieved_rps'], '{:,.0f}')} of {fmt(c['target_rps'], '{:,.0f}')} "
              f"req/s achieved with the generator at {fmt(c['generator_cpu_max'], '{:.0f}')}% "
              "CPU (a cell under 95% of its rate, or with the generator above 90%, did not "
              "get the load compared)"
              for c in summary.get("left_out", [])]
    blocks.append(Block("list", items or ["none: every planned measurement ran, no "
                                          "generator-bound point"]))

    blocks.append(Block("h2", "Threats to validity"))
    blocks.append(Block("list", threats(manifest)))
    return blocks


def cost_blocks(variants: list[str], figures: dict[str, dict[str, Any]], users: float,
                rps: float, prices: Prices) -> list[Block]:
    """Memory, CPU and bytes on the wire for N users and R req/s, on one scale: money."""
    rows = []
    for v in variants:
        f = figures[v]
        b, model, wire = f.get("bytes_per_session"), f.get("cpu_model"), f.get("header_bytes")
        capacity = f.get("capacity_rps")
        gib = max(b, 0.0) * users / 2**30 if b is not None else None
        servers = math.ceil(rps / capacity) if capacity else None
        cores = (servers * max(model["fixed_cores"], 0.0) + model["marginal_us"] * rps / 1e6
                 if model is not None and servers is not None else None)
        gb_month = wire * rps * SECONDS_PER_MONTH / 1e9 if wire is not None else None
        costs = [gib * prices.gib_month if gib is not None else None,
                 cores * prices.vcpu_hour * HOURS_PER_MONTH if cores is not None else None,
                 gb_month * prices.gb if gb_month is not None else None]
        total = sum(costs) if None not in costs else None  # type: ignore[arg-type]
        rows.append([v, fmt(gib, "{:,.2f}"), fmt(servers, "{:,}"), fmt(cores, "{:,.2f}"),
                     fmt(gb_month, "{:,.0f}"), *[fmt(c, "${:,.0f}") for c in costs],
                     fmt(total, "${:,.0f}")])
    return [
        Block("p", f"For {users:,.0f} live users and {rps:,.0f} requests/s, from this run's "
                   "bytes per live user, its CPU model and credential bytes per request. CPU "
                   "is modelled, not measured at that rate: server + Redis CPU against the "
                   "rate served, fitted over the knee's points up to capacity and the "
                   "common-rate cells (section 4), as a fixed cost per server (the "
                   "intercept) plus a marginal cost per request (the slope); the rate needs "
                   "rate / capacity servers, rounded up, each paying the fixed cost. Prices, "
                   f"settable with `python -m analysis RUN --price-gib-month "
                   f"{prices.gib_month:g} --price-vcpu-hour {prices.vcpu_hour:g} "
                   f"--price-gb {prices.gb:g}`: ${prices.gib_month:g} per GiB-month of "
                   f"memory, ${prices.vcpu_hour:g} per vCPU-hour, ${prices.gb:g} per GB "
                   "carried (request headers are inbound traffic, which many clouds do not "
                   "bill: read the network column as an upper bound; load balancers "
                   "usually bill it)."),
        table_block(("variant", "session memory (GiB)", "servers (one core each)",
                     "CPU cores, all work", "credential GB/month", "memory $/month",
                     "CPU $/month", "network $/month", "total $/month"), rows),
    ]


def generators(summary: dict[str, Any]) -> str:
    """The generators that measured the headline figures, by name."""
    names = sorted({f["generator"] for f in summary["variants"].values() if f.get("generator")})
    described = {"loadgen": "authscale-loadgen (the fast C generator, fixed rate)",
                 "locust": "Locust"}
    return ", ".join(described.get(n, n) for n in names) or "–"


def population_blocks(summary: dict[str, Any], charts: dict[str, Path]) -> list[Block]:
    """Section 2: what the server serves, and how fast, as live users grow."""
    blocks = [Block("h2", "2. Scaling with live users"),
              Block("image", charts["population"], "At each number of live users: p99 at a "
                    "common fixed rate (left; solid: requests spread uniformly over all N "
                    "users, their seeded sessions or credentials minted for them, or over "
                    "1,000 logged-in users where the generator can make neither; dashed: a hot "
                    "set, a power law over the N users), "
                    "what one server core served flat out (second), the server's longest "
                    "garbage-collector pause so far, seeding included (third, log scale), "
                    "and p99 against "
                    "keep-alive connections open at once, each its own user (right). "
                    "authscale-loadgen.")]
    population = pd.DataFrame(summary.get("population_curve") or [])
    if population.empty:
        blocks.append(Block("p", "Live users not measured with the fast generator in this "
                            "run (runs before it measured the population's latency with "
                            "Locust, at a low rate, and reported memory only)."))
    else:
        blocks.append(live_users_table(population))
        storm = storm_text(population)
        if storm:
            blocks.append(Block("p", storm))
    connections = pd.DataFrame(summary.get("connections_curve") or [])
    if not connections.empty:
        blocks.append(connections_table(connections))
    return blocks


def live_users_table(population: pd.DataFrame) -> Block:
    rows = [[r["variant"] + (f" + {r['remedy']}" if r.get("remedy") else ""),
             f"{r['population']:,}", r["distribution"],
             offered(r), fmt(r["achieved_rps"], "{:,.0f}"), f"{r['requests']:,}",
             fmt(r.get("p50_ms"), "{:.2f}"), fmt(r.get("p99_ms"), "{:.2f}"),
             fmt(r.get("p99.9_ms"), "{:.2f}"), fmt(r.get("max_ms"), "{:.1f}"),
             fmt(r.get("gc_pause_ms"), "{:.1f}"),
             fmt(r.get("gc_full_pauses"), "{:.0f}"), fmt(r.get("gc_longest_pause_ms"), "{:.1f}"),
             fmt(r.get("gc_longest_ever_ms"), "{:.1f}"),
             fmt(r.get("server_cpu_us_per_request"), "{:.0f}"), logins_cell(r)]
            for r in population.to_dict("records")]
    return table_block(
        ("variant", "live users", "requests over", "offered req/s", "served req/s",
         "requests", "p50 ms", "p99 ms", "p99.9 ms", "longest ms", "GC pauses ms",
         "full collections",
         "new longest GC pause ms", "longest GC pause so far ms", "server CPU µs/request",
         "logins: count, p99 / longest ms"),
        rows,
        "A variant `+ gc.freeze` is the remedy beside the plain store: its server froze "
        "what the collector tracked as it seeded (`--gc-freeze`: after each seed, and "
        "since 30 November 2026 after each chunk of 20,000 sessions and every 20,000 "
        "logins as well). "
        "Requests over: `uniform`, every one of the N seeded sessions alike, its id derived "
        "from the salt the server gave; `zipf`, a power law over them (a hot set); "
        "`minted`, a credential for each of the N users, made by the generator with the "
        "run's secret: an HS256 token, or for the encrypted cookie a session cookie "
        "encrypted with the run's Fernet key (these variants keep nothing per user: this "
        "measures their flat line with N distinct credentials; runs before 30 November 2026 "
        "gave the cookie `logged-in`); "
        "`logged-in`, 1,000 real users' credentials (the control, which reads none). "
        "GC: the server's own collector, timed by gc.callbacks, in the measured window: "
        "total pause, full (generation 2) collections, and the longest pause where it was "
        "the longest since the server started; then the longest since the server started, seeding "
        "included (seeding grows the store fastest, and the "
        "collector's full passes over it come then). A percentile only where "
        "the cells hold enough requests for it (p99: 1,000; p99.9: 10,000); the longest "
        "wait of any read, in full. Logins: at "
        "the common rate a share of the requests are logins (POST /login, each a new "
        "session or token), so the store grows while it serves; the latency columns are "
        "the reads', the last column the logins' (their p99 from 1,000 logins). A `storm` "
        "row: logins at half the offered rate, reads the other half, until the in-process "
        "store has grown by the share below.")


def offered(row: dict[str, Any]) -> str:
    """What a population step offered: flat out, or a rate (a storm's marked)."""
    if row["phase"] == "saturation":
        return "flat out"
    rate = f"{row['target_rps']:,.0f}"
    return f"{rate} storm" if row["phase"] == "storm" else rate


def storm_text(population: pd.DataFrame) -> str | None:
    """The login storms in words: what the collector did as logins grew the store, and
    what the reads and logins waited, per arm."""
    storms = population[population["phase"] == "storm"]
    if storms.empty:
        return None
    parts = []
    for r in storms.to_dict("records"):
        name = r["variant"] + (f" + {r['remedy']}" if r.get("remedy") else "")
        grown = r["logins"] / r["population"] if r.get("logins") else 0.0
        parts.append(
            f"{name} at {r['population']:,} live users, {r['logins'] or 0:,} logins in "
            f"{r['requests'] + (r['logins'] or 0):,} requests (the store grown by "
            f"{grown:.0%}): {fmt(r.get('gc_full_pauses'), '{:.0f}')} full "
            f"collection{'' if r.get('gc_full_pauses') == 1 else 's'}, "
            f"{fmt(r.get('gc_full_pause_ms'), '{:,.1f}')} ms of them; the reads' longest "
            f"wait {fmt(r.get('max_ms'), '{:,.1f}')} ms (p99 {fmt(r.get('p99_ms'), '{:.2f}')}"
            f" ms), the logins' {fmt(r.get('login_max_ms'), '{:,.1f}')} ms")
    return ("Login storm (CPython's full collection runs when what survived the last one "
            "has grown by a quarter, so churn at the common rate never meets one in a large "
            "store; a morning's logins do): " + "; ".join(parts) + ".")


def logins_cell(row: dict[str, Any]) -> str:
    """A step's logins: how many, their p99 (where enough) and the longest, in ms."""
    if not row.get("logins"):
        return "–"
    return (f"{row['logins']:,}, {fmt(row.get('login_p99_ms'), '{:.2f}')} / "
            f"{fmt(row.get('login_max_ms'), '{:.1f}')}")


def connections_table(connections: pd.DataFrame) -> Block:
    rows = [[r["variant"], f"{r['connections']:,}", fmt(r["target_rps"], "{:,.0f}"),
             fmt(r["achieved_rps"], "{:,.0f}"), f"{r['requests']:,}", f"{r['errors']:,}",
             fmt(r.get("p50_ms"), "{:.2f}"), fmt(r.get("p99_ms"), "{:.2f}"),
             fmt(r["server_rss_peak_bytes"] / 2**20, "{:,.1f}"),
             fmt(r.get("bytes_per_connection"), "{:,.0f}")]
            for r in connections.to_dict("records")]
    return table_block(
        ("variant", "connections open", "offered req/s", "served req/s", "requests",
         "errors", "p50 ms", "p99 ms", "server RSS MiB (peak)", "bytes per connection"), rows,
        "Users at once as connections: that many keep-alive connections open together, each "
        "its own user (its own seeded session, a credential minted for it, or its own logged-in "
        "user), the same total "
        "rate spread over them. Bytes per connection: what the server's peak RSS grew by "
        "per connection over the fewest measured. Where the connections outnumber the "
        "window's requests (10,000 connections at 1,000 requests/s for 2 s), nearly every "
        "request is the first on its connection since it opened.")


def capacity_blocks(variants: list[str], figures: dict[str, dict[str, Any]],
                    summary: dict[str, Any], charts: dict[str, Path]) -> list[Block]:
    """Section 3: what each variant serves flat out, its knee, and its CPU model."""
    blocks = [Block("h2", "4. Capacity and the knee")]
    rows = []
    for v in variants:
        f = figures[v]
        if f.get("capacity_rps") is None:
            continue
        low, high = f.get("capacity_rps_interval") or [None, None]
        model = f.get("cpu_model") or {}
        rows.append([v, f"{fmt(f['capacity_rps'], '{:,.0f}')} [{fmt(low, '{:,.0f}')}, "
                        f"{fmt(high, '{:,.0f}')}]", fmt(f.get("capacity_server_cpu_percent"),
                                                        "{:.0f}%"),
                     fmt(f.get("capacity_cpu_us_per_request"), "{:.0f}"),
                     fmt(f.get("capacity_latency_ms_p50"), "{:.1f}"),
                     fmt(f.get("capacity_generator_cpu_max"), "{:.0f}%"),
                     fmt(model.get("fixed_cores"), "{:.3f}"),
                     fmt(model.get("marginal_us"), "{:.0f}"), fmt(model.get("r2"), "{:.3f}")])
    if rows:
        blocks.append(table_block(
            ("variant", "capacity req/s [interval]", "server core busy",
             "CPU µs/request flat out", "p50 ms flat out", "generator core busy (max)",
             "fixed CPU (cores)", "marginal CPU µs/request", "fit r²"), rows,
            "Capacity: the rate one server core serves flat out (closed loop, every "
            "connection's next request sent as its answer arrives), the median over the "
            "repetitions with its order-statistic interval; the server's core should be near "
            "100% and the generator's well under it, or the generator set the limit. CPU "
            "model: server + Redis CPU (cores) against the rate served, a least-squares line "
            "over the knee's points up to capacity and the common-rate cells."))
    blocks.append(Block("image", charts["knee"], "Each variant at 0.25 to 1.2 of its own "
                        "capacity, measured by authscale-loadgen at a fixed rate, latency "
                        "from each request's due time; requests still unanswered at the end "
                        "of a window count at the wait they had reached (a lower bound)."))
    knee = pd.DataFrame(summary.get("knee_curve") or [])
    if not knee.empty:
        rows = [[r["variant"], f"{r['fraction']:g}", fmt(r["target_rps"], "{:,.0f}"),
                 fmt(r["achieved_rps"], "{:,.0f}"), f"{r['requests']:,}",
                 fmt(r.get("p50_ms"), "{:.2f}"), fmt(r.get("p99_ms"), "{:.2f}"),
                 f"{r['unanswered']:,}", fmt(r["server_cpu_percent"], "{:.0f}%"),
                 fmt(r["server_cpu_us_per_request"], "{:.0f}"),
                 fmt(r.get("redis_cpu_us_per_request"), "{:.0f}"),
                 fmt(r.get("gc_pause_ms"), "{:.1f}"),
                 fmt(r.get("server_core_steal_percent"), "{:.1f}%")]
                for r in knee.to_dict("records")]
        blocks.append(table_block(
            ("variant", "fraction of capacity", "offered req/s", "served req/s", "requests",
             "p50 ms", "p99 ms", "unanswered at the end", "server core busy",
             "server CPU µs/request", "Redis CPU µs/request", "GC pauses ms",
             "server core stolen"), rows,
            "One cell per point; a percentile only where the cell holds enough requests for "
            "it (p99: 1,000). A point whose CPU per request jumps above its neighbours' "
            "with no GC pause to explain it ran on a slowed core: the hypervisor's steal, "
            "where recorded, says how much of it was taken."))
    return blocks


def calibration_blocks(path: Path) -> list[Block]:
    """The calibration the run made or used: auth cost alone, capacity, the targets."""
    if not path.exists():
        return []
    data = read_json(path)
    rows = [[v, fmt(c.get("auth_us_p50"), "{:.1f}"), fmt(c.get("capacity_rps"), "{:,.0f}"),
             c.get("limited_by", "–"), fmt(c.get("closed_loop_rps"), "{:,.0f}"),
             closed_windows(c),
             fmt(c.get("server_cpu_us_per_request"), "{:.0f}"),
             fmt(c.get("redis_cpu_us_per_request"), "{:.0f}"), core_speed(c)]
            for v, c in data["variants"].items()]
    blocks = [
        Block("p", f"The calibration this run's rates came from (`calibration.json`, "
                   f"{data.get('created_at', 'undated')}): the auth path timed one request at "
                   f"a time, and the capacity, the highest rate with no error, p99 within "
                   f"{data.get('p99_bound_ms', '?')} ms and 95% of the rate achieved."),
        table_block(("variant", "auth µs p50, alone", "capacity req/s", "limited by",
                     "flat out req/s (median)", "its windows", "server CPU µs per request",
                     "Redis CPU µs per request", "server core's speed off 15%"), rows,
                    "Limited by 'server': its core at least 90% busy with the generator's "
                    "under 80%; 'generator': the generator's core 80% busy or more. Flat out: "
                    "the fast generator in closed loop, windows before the search, between "
                    "its climb and its bisection, and after it; the capacity should be within "
                    "15% of their median. CPU is process CPU time (the server's; Redis's from "
                    "INFO), at the capacity. The server core's speed: a fixed piece of work "
                    "timed on it alone before each flat-out window, per 100 ms stretch; the "
                    "share of stretches more than 15% off the median one, and the slowest "
                    "and fastest against it. A flat-out window averages slow stretches away; "
                    "a rate held to a p99 bound must ride them out."),
    ]
    targets = [[t["variant"], t["what"], fmt(t["value"], "{:.2f}"), t["target"] or "–",
                {True: "yes", False: "no", None: "–"}[t["met"]]]
               for t in data.get("targets", [])]
    if targets:
        blocks.append(table_block(("variant", "ratio", "value", "target", "met"), targets,
                                  "Each ratio measured within the calibration's one run."))
    return blocks


def closed_windows(calibrated: dict[str, Any]) -> str:
    """A variant's flat-out (closed-loop) windows in the calibration, in the order they ran."""
    return " / ".join(f"{w['achieved_rps']:,.0f}"
                      for w in calibrated.get("closed_loop", [])) or "–"


def core_speed(calibrated: dict[str, Any]) -> str:
    """How steady the server's core ran around a variant's calibration, where recorded."""
    core = calibrated.get("core_steadiness")
    if not core:
        return "–"
    return (f"{core['off_share']:.0%} ({core['slowest_over_median']:.2f}–"
            f"{core['fastest_over_median']:.2f}×)")


def placement_sentence(placement: dict[str, Any]) -> str:
    """Where the servers ran: said only when in containers (local processes otherwise)."""
    if placement.get("servers") != "containers":
        return ""
    engine, images = placement.get("engine", {}), placement.get("images", {})
    return (f"Servers and Redis ran in containers ({engine.get('name')} "
            f"{engine.get('version')} through {engine.get('compose')}; images: Python base "
            f"`{images.get('python')}`, Redis `{images.get('redis')}`; limits read back "
            f"from the engine: "
            + "; ".join(f"{service} {limits}" for service, limits in
                        placement.get("limits", {}).items())
            + f"), the load generators as {placement.get('generators')}. ")


def rates_origin(manifest: dict[str, Any], summary: dict[str, Any]) -> str:
    """Where the common rates came from: fixed in the profile, or fractions of the lowest
    capacity (the calibration's, or this run's flat-out cells)."""
    fractions = manifest.get("settings", {}).get("latency", {}).get("fractions") or []
    capacities = summary.get("capacities") or {}
    rates = summary.get("common_rates") or []
    if not fractions or not capacities:
        return "Rates: the profile's fixed rates."
    lowest = min(capacities.items(), key=lambda item: item[1]["capacity_rps"])
    origin = manifest.get("rates_from") or {}
    source = (f"the calibration `{origin['calibration']}` ({origin.get('created_at', 'undated')})"
              if lowest[1].get("capacity_from") == "calibration" and origin.get("calibration")
              else "this run's flat-out cells")
    shares = ", ".join(f"{f:.0%}" for f in fractions)
    return (f"Rates: {', '.join(f'{r:,.0f}' for r in rates)} requests/s, {shares} of the "
            f"lowest capacity ({lowest[0]}, {lowest[1]['capacity_rps']:,.0f} req/s, from "
            f"{source}), the same for every variant.")


def threats(manifest: dict[str, Any]) -> list[str]:
    machine = manifest.get("machine", {})
    pinning = manifest.get("pinning", {})
    items = [
        "One machine: the load generator shares the box with the server (pinned to "
        f"CPU {pinning.get('generator_cpus')} against CPU {pinning.get('server_cpus')}), and "
        f"Redis runs on CPU {pinning.get('redis_cpus')}, beside the generator, instead of on "
        "a host of its own.",
        "Locust paces each user separately; at the same total rate, more users inflate the "
        "client-side latency. Profiles use few users at high per-user rates, which in turn "
        "lets a stalled server delay the next request of that user (coordinated omission) "
        "more than a truly open arrival process would.",
        "Loopback instead of a network: no real round-trip time, so the bytes a credential "
        "adds cost less here than over a WAN and a Redis round trip costs less than across "
        "hosts.",
        "A shared, virtualised machine: neighbours add noise, which is why figures are "
        "compared within one run and carry intervals.",
        "Python servers: per-request overheads of the framework dominate; a compiled server "
        "would shrink them and make the auth primitive a larger share of each request.",
        "One Locust process on one core bounds the offered load; points where it could not "
        "keep up are flagged generator-bound, not reported as server limits.",
        "Memory is resident set size after seeding; CPython does not always return freed "
        "memory, so a server's RSS includes allocator slack.",
    ]
    if (machine.get("logical_cores") or 0) > 2:
        items.append("A bigger machine would let each component have its own cores; this "
                     "run kept the same two-core layout.")
    return items


def render_markdown(blocks: list[Block], out: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        if block.kind == "h1":
            lines += [f"# {block.content}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.content}", ""]
        elif block.kind == "p":
            lines += [block.content, ""]
        elif block.kind == "quote":
            lines += [f"> {block.content}", ""]
        elif block.kind == "list":
            lines += [f"- {item}" for item in block.content] + [""]
        elif block.kind == "image":
            rel = Path(block.content).relative_to(out)
            lines += [f"![{block.caption or rel.stem}]({rel.as_posix()})", ""]
            if block.caption:
                lines += [f"*{block.caption}*", ""]
        elif block.kind == "table":
            columns, rows = block.content
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("| " + " | ".join("---" for _ in columns) + " |")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            lines.append("")
            if block.caption:
                lines += [f"*{block.caption}*", ""]
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} blockquote{border-left:4px solid #888;margin:1em 0;padding:.2em 1em;
color:#444;font-style:italic} img{max-width:100%;height:auto} figcaption{font-size:.85em;
color:#555} code{background:#f3f3f3;padding:0 .2em}
@media print{body{max-width:none} img{page-break-inside:avoid} h2{page-break-after:avoid}}
"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        if block.kind in ("h1", "h2"):
            body.append(f"<{block.kind}>{html.escape(block.content)}</{block.kind}>")
        elif block.kind == "p":
            body.append(f"<p>{_inline(block.content)}</p>")
        elif block.kind == "quote":
            body.append(f"<blockquote>{html.escape(block.content)}</blockquote>")
        elif block.kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.content)
                        + "</ul>")
        elif block.kind == "image":
            data = base64.b64encode(Path(block.content).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(Path(block.content).stem)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(block.caption)}</figcaption></figure>")
        elif block.kind == "table":
            columns, rows = block.content
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                            for r in rows)
            caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption \
                else ""
            body.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{cells}"
                        "</tbody></table>")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
