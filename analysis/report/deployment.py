"""The report's answer for a deployment: the store across a network, the shared store's
ceiling, the planner's table for N users at R requests/s, and the crossover map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plan
from analysis.report.blocks import Block, fmt, table_block


def network_blocks(summary: dict[str, Any]) -> list[Block]:
    rows = summary.get("network") or []
    if not rows:
        return [Block("p", "The store across a network was not measured in this run.")]
    forwarder = {(r["variant"], r["rtt_ms"]): r["us_per_request"]
                 for r in summary.get("forwarder") or []}
    table = [[r["variant"], "direct" if not r["rtt_ms"] else f"+{r['rtt_ms']:g} ms",
              fmt(r.get("ping_ms"), "{:.3f}"), fmt(r.get("per_core_rps"), "{:,.0f}"),
              fmt(r.get("per_core_rps_vs_direct"), "{:.2f}x"),
              fmt(r.get("target_rps"), "{:,.0f}"), fmt(r.get("p50_ms"), "{:.2f}"),
              fmt(r.get("p99_ms"), "{:.2f}"), fmt(r.get("in_flight"), "{:.1f}"),
              fmt(r.get("server_cpu_us_per_request"), "{:.0f}"),
              fmt(forwarder.get((r["variant"], r["rtt_ms"])), "{:.1f}")]
             for r in rows]
    return [
        Block("p", "Redis on loopback pays no network round trip; in a deployment every "
                   "session lookup (and every revocable token's denylist check) pays one, "
                   "and a stateless token none. The Redis variants were measured with their "
                   "Redis reached directly and through a forwarder that holds each "
                   "direction for half of an added round trip (netem is not in this "
                   "kernel, and Debian has no toxiproxy), one server per setting on the "
                   "server core, the forwarder beside the generator."),
        table_block(("variant", "to Redis", "PING round trip ms", "flat out per core-second",
                     "against direct", "common rate req/s", "p50 ms", "p99 ms",
                     "requests in flight", "server CPU µs/request",
                     "forwarder CPU µs/request"), table,
                    "PING: the median of 300 sequential PINGs through that path (redis-py). "
                    "Flat out per core-second: requests served per CPU-second of the "
                    "server (closed loop, 64 connections), one window per setting, one "
                    "after the other: its ratio against direct carries the core's changes "
                    "of speed (up to 1.9x within a second here), so only the round trip "
                    "and the latency columns are this table's figures; the cost a round "
                    "trip adds to the CPU is the duet's. In flight: the rate times the "
                    "mean wait (Little's law). A percentile only where the cells hold "
                    "enough requests for it.")]


def ceiling_blocks(summary: dict[str, Any]) -> list[Block]:
    rows = summary.get("store_ceiling") or []
    if not rows:
        return [Block("p", "The shared store's ceiling was not measured in this run.")]
    table = [[r["variant"], r["command"], f"{r['connections']}",
              fmt(r["lookups_per_s"], "{:,.0f}"), fmt(r["redis_core_busy"], "{:.0%}"),
              fmt(r.get("client_core_busy"), "{:.0%}"),
              fmt(r["lookups_per_redis_core"], "{:,.0f}"),
              fmt(r.get("server_capacity_per_core"), "{:,.0f}"),
              fmt(r.get("k_from_ceiling"), "{:.1f}"), fmt(r.get("k_from_cpu"), "{:.1f}")]
             for r in rows]
    bound = [r for r in rows if not r["store_bound"]]
    caveat = (" Where Redis's core was under 90% busy the client, not the store, set the "
              "pace: that ceiling is a lower bound." if bound else "")
    return [table_block(
        ("variant", "command", "connections", "lookups/s", "Redis core busy", "client core "
         "busy", "lookups per Redis core-second", "server requests per core-second",
         "K: server cores one Redis core carries", "K from CPU per request"), table,
        "One Redis on one core, driven flat out by redis-benchmark from the other core with "
        "the command each request sends, one at a time per connection as the servers' "
        "clients send them. K from the ceiling: lookups per Redis core-second over the "
        "server's requests per core-second (the duet's flat-out windows). K from CPU: the "
        "server's CPU per request over its Redis's, in the same windows, where Redis "
        "serving one server wakes for every request and so costs more per lookup than at "
        "its ceiling." + caveat)]


def planner_blocks(planned: list[dict[str, Any]], users: float, rps: float, rtt_ms: float,
                   prices: plan.Prices, run_id: str) -> list[Block]:
    if not planned:
        return []
    text = plan.render(planned, users, rps, rtt_ms, prices, run_id)
    lines = text.splitlines()
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[4:]
            if line.startswith("|")]
    blocks = [table_block(header, body, lines[-1])]
    cheapest = min((r for r in planned if r["total_usd"] is not None),
                   key=lambda r: r["total_usd"], default=None)
    if cheapest is not None:
        def against_cheapest(r: dict[str, Any]) -> str:
            more = r["total_usd"] - cheapest["total_usd"]
            if round(more) == 0:
                return f"{r['design']} costs the same, to the dollar"
            return (f"{r['design']} costs ${more:,.0f} a month more than "
                    f"{cheapest['design']}, {r['over_cheapest']:.0%} of its own bill")
        words = [against_cheapest(r) for r in planned
                 if r["total_usd"] is not None and r is not cheapest]
        blocks.append(Block("p", f"At {users:,.0f} live users and {rps:,.0f} requests/s, "
                                 f"{cheapest['design']} costs least "
                                 f"(${cheapest['total_usd']:,.0f} a month for servers, "
                                 "memory and Redis); " + "; ".join(words) + "."))
    return blocks


def deployment_blocks(summary: dict[str, Any], charts: dict[str, Path],
                      planned: list[dict[str, Any]], users: float, rps: float, rtt_ms: float,
                      prices: plan.Prices) -> list[Block]:
    blocks = [Block("h2", "Section. For a deployment"),
              Block("h3", "The store across a network")]
    blocks += network_blocks(summary)
    blocks.append(Block("h3", "The shared store's ceiling"))
    blocks += ceiling_blocks(summary)
    blocks.append(Block("h3", f"A plan: {users:,.0f} live users at {rps:,.0f} requests/s"))
    blocks.append(Block("p", "The planner (`python -m analysis plan RUN --users N --rps R "
                             "[--rtt-ms X]`) sizes each design from this run alone: server "
                             "cores at the capacity that held p99 within 20 ms, Redis cores "
                             "from its measured ceiling and shards from its memory, each "
                             "server's memory, what the round trip adds, the longest "
                             "collector pause to expect at N while serving, and money."))
    blocks += planner_blocks(planned, users, rps, rtt_ms, prices, str(summary.get("run_id")))
    if "crossover" in charts:
        blocks.append(Block("image", charts["crossover"],
                            "Which design of a pair costs less a month, by live users and "
                            "requests per second, from the planner's model; the dashed line "
                            "is one Redis core's ceiling, the dotted one the users at which "
                            "the in-process store's longest pause passes 100 ms, the solid "
                            "one where a server's memory fills. Outside the outlined corner "
                            "(the live users measured, one server's capacity) the map is "
                            "extrapolated."))
    return blocks
