"""A deployment sized from a run: for N live users at R requests/s, per design, the server
cores (at the capacity that held p99 within the bound), the Redis cores and memory (and
the shards they need), each server's memory, what a round trip to Redis adds, the longest
collector pause to expect at N, and the money a month, every figure from the run.

    python -m analysis plan RUN --users N --rps R [--rtt-ms X] [--price-... P]

Prices are stated and settable; the network column (the bytes each credential adds, which
many clouds do not bill inbound) is shown apart and left out of the total unless asked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import Run

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
# The service level a server is sized at: the calibration's.
P99_BOUND_MS = 20.0
ACHIEVED_SHARE = 0.95
# The variant a design without login storms of its own borrows its pauses from.
CONTROL = "none"


@dataclass(frozen=True)
class Prices:
    """What a month costs, settable (python -m analysis plan ... --price-...)."""

    vcpu_hour: float = 0.04  # one server core, per hour
    gib_month: float = 3.00  # memory, per GiB-month
    redis_vcpu_hour: float = 0.04  # one Redis core, per hour
    redis_gib_month: float = 3.00  # Redis memory, per GiB-month
    gb: float = 0.09  # bytes carried on the wire, per GB
    redis_shard_gib: float = 16.0  # the memory one Redis shard is given
    server_gib: float = 4.0  # the memory of one server (one core): 4 GiB a vCPU is common


@dataclass(frozen=True)
class Evidence:
    """What the planner reads from a run's summary (and calibration)."""

    designs: list[str]
    figures: dict[str, dict[str, Any]]
    facts: dict[str, dict[str, Any]]
    knee: pd.DataFrame
    calibration: dict[str, Any]
    storms: pd.DataFrame  # the population's login storms (analysis.figures.storms)
    memory: pd.DataFrame  # the run's memory against live users (population.csv)
    network: pd.DataFrame
    ceiling: list[dict[str, Any]]
    measured_users: float


def designs_of(summary: dict[str, Any]) -> list[str]:
    """The declared pairs' variants, sessions first: the designs a deployment chooses among."""
    pairs = summary["verdict"].get("pairs", [])
    return list(dict.fromkeys([p["session"] for p in pairs] + [p["token"] for p in pairs]))


def evidence(run: Run, summary: dict[str, Any]) -> Evidence:
    calibration = run.path / "calibration.json"
    memory = run.population
    return Evidence(
        designs=[d for d in designs_of(summary) if d in summary["variants"]],
        figures=summary["variants"], facts=run.variants.facts,
        knee=pd.DataFrame(summary.get("knee_curve") or []),
        calibration=json.loads(calibration.read_text()) if calibration.exists() else {},
        storms=pd.DataFrame(summary.get("storms") or []), memory=memory,
        network=pd.DataFrame(summary.get("network") or []),
        ceiling=summary.get("store_ceiling") or [],
        measured_users=float(memory["size"].max()) if not memory.empty else 0.0)


def capacity(e: Evidence, design: str) -> tuple[float | None, str]:
    """Requests/s one server core serves with p99 within the bound, and where that comes
    from: the calibration's search, else the highest knee point that held the bound, else
    three quarters of the flat-out capacity (said so)."""
    calibrated = (e.calibration.get("variants") or {}).get(design, {}).get("capacity_rps")
    if calibrated:
        return float(calibrated), "calibration (p99 within 20 ms)"
    if not e.knee.empty:
        mine = e.knee[(e.knee["variant"] == design) & e.knee["p99_ms"].notna()
                      & (e.knee["p99_ms"] <= P99_BOUND_MS) & (e.knee["error_rate"] == 0)
                      & (e.knee["achieved_rps"] >= ACHIEVED_SHARE * e.knee["target_rps"])]
        if not mine.empty:
            return float(mine["target_rps"].max()), "the knee's highest point within 20 ms"
    flat = e.figures.get(design, {}).get("capacity_rps")
    if flat:
        return 0.75 * float(flat), "three quarters of flat out (no point within the bound)"
    return None, "not measured"


def uses_redis(facts: dict[str, Any]) -> bool:
    """A design that asks Redis on every request: sessions there, or a denylist."""
    return facts.get("state") == "redis" or facts.get("denylist") == "redis"


def ceiling_of(e: Evidence, design: str) -> float | None:
    """Lookups one Redis core serves a second with this design's command."""
    found = next((c for c in e.ceiling if c["variant"] == design), None)
    return found.get("lookups_per_redis_core") if found else None


def added_latency_ms(e: Evidence, design: str, rtt_ms: float) -> tuple[float, bool]:
    """What a round trip of `rtt_ms` to Redis adds to the p50 of this design's requests:
    interpolated between the run's measured round trips; beyond the largest, that
    point's increase plus the rest of the round trip (extrapolated: True). Never less than
    the round trip itself: each request asks Redis once and waits for its answer, so a
    smaller increase is the cells' noise (a quick run's p50 at the common rate once read
    1.7 ms lower through 0.2 ms of round trip than directly, and the answer said each
    request waited -1.23 ms more for Redis)."""
    if not uses_redis(e.facts.get(design, {})):
        return 0.0, False
    mine = e.network[e.network["variant"] == design] if not e.network.empty else e.network
    if mine.empty or rtt_ms <= 0:
        return (rtt_ms, rtt_ms > 0)
    mine = mine.dropna(subset=["p50_ms"]).sort_values("rtt_ms")
    base = float(mine[mine["rtt_ms"] == 0.0]["p50_ms"].iloc[0])
    added = mine["p50_ms"] - base
    if rtt_ms <= mine["rtt_ms"].max():
        return max(float(np.interp(rtt_ms, mine["rtt_ms"], added)), rtt_ms), False
    last = mine.iloc[-1]
    return max(float(last["p50_ms"] - base + (rtt_ms - last["rtt_ms"])), rtt_ms), True


@dataclass(frozen=True)
class Design:
    """What the run measured of one design, read once: everything sizing needs."""

    name: str
    capacity_per_server: float | None
    capacity_from: str
    in_process: bool  # sessions in the server: sticky routing, memory per server
    uses_redis: bool
    server_bytes_per_user: float
    redis_bytes_per_user: float
    lookups_per_redis_core: float | None
    baseline_rss_bytes: float
    header_bytes: float | None
    pauses: dict[float, float]  # live users -> the longest collector pause so far (ms)


def prepare(e: Evidence, design: str) -> Design:
    f, facts = e.figures[design], e.facts.get(design, {})
    per_server, source = capacity(e, design)
    in_process = facts.get("state") == "process"
    steps = pause_steps(e.storms, design, in_process)
    return Design(
        design, per_server, source, in_process, uses_redis(facts),
        max(f.get("server_bytes_per_session") or 0.0, 0.0) if in_process else 0.0,
        max(f.get("redis_bytes_per_session") or 0.0, 0.0) if uses_redis(facts) else 0.0,
        ceiling_of(e, design) if uses_redis(facts) else None, base_rss(e, design) or 0.0,
        f.get("header_bytes"), steps)


def pause_steps(storms: pd.DataFrame, design: str, in_process: bool) -> dict[float, float]:
    """Live users -> the longest full collection a login storm met at that many (the only
    service that grows a store enough for one), the design's own storms, or where it met
    none the control's (a server keeping nothing per user pays what any does). For a store
    in the process, keyed by the sessions the collection walked: those seeded and those the
    storm's logins added."""
    if storms.empty:
        return {}
    mine = storms[(storms["variant"] == design) & (storms["remedy"] == "")]
    if mine.empty:
        mine = storms[(storms["variant"] == CONTROL) & (storms["remedy"] == "")]
    return {float(r["population"] + ((r["logins"] or 0) if in_process else 0)):
            float(r["gc_full_longest_ms"]) for r in mine.to_dict("records")
            if pd.notna(r["gc_full_longest_ms"])}


def longest_pause(d: Design, users: float) -> tuple[float | None, bool]:
    """The longest collector pause expected at `users` live users: interpolated between
    the steps measured; beyond the largest, in proportion to the users where the store is
    in the process (the collector walks it), the largest measured elsewhere. True where
    that is an extrapolation."""
    if not d.pauses:
        return None, False
    sizes, pauses = sorted(d.pauses), [d.pauses[k] for k in sorted(d.pauses)]
    beyond = users > sizes[-1]
    if not d.in_process:
        return max(pauses), False
    if not beyond:
        return float(np.interp(users, sizes, pauses)), False
    return pauses[-1] / sizes[-1] * users, True


def size(d: Design, e: Evidence, users: float, rps: float, rtt_ms: float, prices: Prices,
         network_in_total: bool = False) -> dict[str, Any]:
    """One design sized for `users` at `rps`: every figure the plan's table prints."""
    servers = math.ceil(rps / d.capacity_per_server) if d.capacity_per_server else None
    # Sessions in the process: enough servers to hold them, each within its memory.
    room = prices.server_gib * 2**30 - d.baseline_rss_bytes
    if servers is not None and d.server_bytes_per_user and room > 0:
        servers = max(servers, math.ceil(d.server_bytes_per_user * users / room))
    redis_gib = d.redis_bytes_per_user * users / 2**30
    redis_cores = (math.ceil(rps / d.lookups_per_redis_core) if d.lookups_per_redis_core
                   else None) if d.uses_redis else 0
    shards = max(redis_cores or 0, math.ceil(redis_gib / prices.redis_shard_gib)) \
        if d.uses_redis else 0
    server_gib = (d.baseline_rss_bytes + d.server_bytes_per_user * users
                  / max(servers or 1, 1)) / 2**30
    latency, latency_extrapolated = added_latency_ms(e, d.name, rtt_ms)
    pause, pause_extrapolated = longest_pause(d, users)
    costs = {
        "servers_usd": servers * prices.vcpu_hour * HOURS_PER_MONTH if servers else None,
        "server_memory_usd": server_gib * (servers or 0) * prices.gib_month,
        "redis_usd": (shards * prices.redis_vcpu_hour * HOURS_PER_MONTH
                      + redis_gib * prices.redis_gib_month) if d.uses_redis else 0.0,
        "network_usd": d.header_bytes * rps * SECONDS_PER_MONTH / 1e9 * prices.gb
        if d.header_bytes is not None else None}
    total = None if costs["servers_usd"] is None or (d.uses_redis and redis_cores is None) \
        else costs["servers_usd"] + costs["server_memory_usd"] + costs["redis_usd"] + \
        ((costs["network_usd"] or 0.0) if network_in_total else 0.0)
    return {"design": d.name, "capacity_per_server": d.capacity_per_server,
            "capacity_from": d.capacity_from, "servers": servers,
            "server_memory_gib": server_gib,
            "session_memory_gib": d.server_bytes_per_user * users / 2**30,
            "sticky_routing": d.in_process, "redis_cores": redis_cores,
            "redis_memory_gib": redis_gib, "redis_shards": shards,
            "lookups_per_redis_core": d.lookups_per_redis_core, "added_latency_ms": latency,
            "added_latency_extrapolated": latency_extrapolated, "longest_pause_ms": pause,
            "pause_extrapolated": pause_extrapolated, **costs, "total_usd": total}


def plan(e: Evidence, users: float, rps: float, rtt_ms: float, prices: Prices,
         network_in_total: bool = False) -> list[dict[str, Any]]:
    """One row per design, and how much of each one's bill is over the cheapest's."""
    rows = [size(prepare(e, d), e, users, rps, rtt_ms, prices, network_in_total)
            for d in e.designs]
    cheapest = min((r["total_usd"] for r in rows if r["total_usd"] is not None), default=None)
    for r in rows:
        r["over_cheapest"] = (r["total_usd"] - cheapest) / r["total_usd"] \
            if cheapest is not None and r["total_usd"] else None
    return rows


def users_at_pause(d: Design, limit_ms: float) -> float | None:
    """The live users at which the longest pause reaches `limit_ms` (in-process stores)."""
    if not d.in_process or not d.pauses:
        return None
    sizes = sorted(d.pauses)
    pauses = [d.pauses[k] for k in sizes]
    for (n0, p0), (n1, p1) in zip(zip(sizes, pauses, strict=True),
                                  zip(sizes[1:], pauses[1:], strict=True), strict=False):
        if p0 < limit_ms <= p1:
            return n0 + (limit_ms - p0) * (n1 - n0) / (p1 - p0)
    return limit_ms * sizes[-1] / pauses[-1] if pauses[-1] > 0 else None


def base_rss(e: Evidence, design: str) -> float | None:
    """A server's RSS before its users: its smallest live-user step's; for a design the
    population did not measure, the largest such baseline of the others (the servers are
    one application: they differ by a library or two)."""
    if e.memory.empty:
        return None
    smallest = e.memory.sort_values("size").groupby("variant").first()["server_rss_bytes"]
    return float(smallest[design]) if design in smallest.index else float(smallest.max())


def fmt(value: Any, pattern: str, missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return pattern.format(value)


def over(r: dict[str, Any]) -> str:
    """How much of a design's bill is what it costs over the cheapest design's."""
    share = r["over_cheapest"]
    return "" if not share else f" ({share:.0%} of it over the cheapest)"


def render(rows: list[dict[str, Any]], users: float, rps: float, rtt_ms: float,
           prices: Prices, run_id: str, network_in_total: bool = False) -> str:
    """The plan as a markdown table, with its assumptions."""
    lines = [f"# authscale plan: {users:,.0f} live users at {rps:,.0f} requests/s "
             f"(run {run_id})", "",
             "| design | servers (1 core) | capacity per server | Redis cores / shards | "
             "Redis memory | memory per server | round trip adds | longest pause at N | "
             "$/month (servers + memory + Redis) | network $/month (apart) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        redis = "–" if r["redis_shards"] == 0 and not r["redis_cores"] else \
            f"{fmt(r['redis_cores'], '{:,}')} / {r['redis_shards']:,}"
        lines.append(
            f"| {r['design']}{' (sticky routing)' if r['sticky_routing'] else ''} | "
            f"{fmt(r['servers'], '{:,}')} | {fmt(r['capacity_per_server'], '{:,.0f}')} req/s "
            f"({r['capacity_from']}) | {redis} | {fmt(r['redis_memory_gib'], '{:,.1f}')} GiB | "
            f"{fmt(r['server_memory_gib'], '{:,.2f}')} GiB | "
            f"{fmt(r['added_latency_ms'], '{:.2f}')} ms"
            f"{' (extrapolated)' if r['added_latency_extrapolated'] else ''} | "
            f"{fmt(r['longest_pause_ms'], '{:,.0f} ms')}"
            f"{' (extrapolated)' if r['pause_extrapolated'] else ''} | "
            f"{fmt(r['total_usd'], '${:,.0f}')}{over(r)} | "
            f"{fmt(r['network_usd'], '${:,.0f}')} |")
    lines += ["", f"Round trip to Redis: {rtt_ms:g} ms. Prices: ${prices.vcpu_hour:g} per "
                  f"vCPU-hour, ${prices.gib_month:g} per GiB-month, Redis "
                  f"${prices.redis_vcpu_hour:g} per core-hour and "
                  f"${prices.redis_gib_month:g} per GiB-month in shards of "
                  f"{prices.redis_shard_gib:g} GiB, servers of {prices.server_gib:g} GiB, "
                  f"${prices.gb:g} per GB on the wire "
                  + ("(in the total)." if network_in_total else
                     "(request headers are inbound, which many clouds do not bill: apart "
                     "from the total).") + " Longest pause: the longest full collection a login "
                  "storm met while serving (for a store in the process beyond the sessions "
                  "it walked in proportion to them; for a design without storms of its own "
                  "the control's, a server keeping nothing per user); – where the run had "
                  "no storms. Round trip adds: to the median request, from the run's cells "
                  "through added round trips, never less than one round trip (each request "
                  "asks Redis once)."]
    return "\n".join(lines) + "\n"
