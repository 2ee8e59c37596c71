"""The report's sections on the claim's own words, many users at once: service as live
users grow, the collector's pauses in login storms, and users at once as connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.growth import FIGURE_NAMES
from analysis.report.blocks import Block, fmt, table_block
from analysis.stats import GeoMean


def side_of(summary: dict[str, Any], variant: str) -> str:
    """The side of the claim a variant stands for, as the growth verdict reads it."""
    states = next((a.get("states") for a in summary["verdict"]["axes"]
                   if a["axis"] == "service as live users grow"), None) or {}
    return states.get(variant, "–")


def ratio_cell(r: dict[str, Any] | None) -> str:
    if r is None or pd.isna(r["ratio"]):
        return "–"
    return GeoMean.of(r).words("{:.2f}")


def growth_section(summary: dict[str, Any], charts: dict[str, Path],
                   verdict: Any) -> list[Block]:
    growth = summary.get("growth") or {}
    steps = pd.DataFrame(growth.get("steps") or [])
    blocks = [Block("h2", "Section. Service as live users grow"),
              Block("p", "Each variant runs two servers of itself on the server core at once, "
                         "each driven by its own generator: one grown step by step to N live "
                         "users, its companion held at the fewest. At each step, windows flat "
                         "out (requests per CPU-second: capacity per core) interleaved with "
                         "windows at one fixed rate for both (a quarter of their capacity "
                         "each, one request in ten a login so both stores grow as in "
                         "service; each side's reads' p99 and CPU per request), every request "
                         "to one of all N users. The ratio N / fewest per window, its "
                         "geometric mean over the step's windows with a 95% interval: a "
                         "slow stretch of the core hits both servers alike. At the first "
                         "step both servers hold the fewest users: that step is the "
                         "variant's A/A control, and the widest A/A interval is this "
                         "axis's margin.")]
    if steps.empty:
        return [*blocks, Block("p", "This run has no live-user steps: the axis is not "
                                    "judged.")]
    blocks.append(Block("image", charts["growth"], "Capacity per core and p99, the grown "
                        "server at N live users over its companion at the fewest, at once; "
                        "the bar is the 95% interval, the grey band the run's margin."))
    rows = []
    for (variant, population), mine in steps.groupby(["variant", "population"], sort=False):
        by_figure = {r["figure"]: r for r in mine.to_dict("records")}
        first = next(iter(by_figure.values()))
        rows.append([variant, side_of(summary, variant), f"{population:,}"
                     + (" (A/A)" if population == first["fewest"] else ""),
                     *[ratio_cell(by_figure.get(f)) for f in ("capacity", "p99", "cpu")],
                     fmt(by_figure.get("p99", {}).get("b_median"), "{:,.0f}"),
                     f"{by_figure.get('capacity', first)['n']} / "
                     f"{by_figure.get('p99', first)['n']}",
                     fmt(first.get("gc_full"), "{:.0f}")])
    margins = growth.get("margins") or {}
    blocks.append(table_block(
        ("variant", "verdict", "live users", "capacity per core, N / fewest",
         "p99, N / fewest", "CPU per request, N / fewest", "p99 at N (µs)",
         "windows (flat / rate)", "full collections met"), rows,
        "Each ratio: the grown server over its companion, the geometric mean of the "
        "windows' ratios with its 95% interval (Student's t on their logarithms). A p99 "
        "window counts where both sides hold 1,000 reads or more. The run's margin, its "
        "widest A/A interval (at least ±10% for capacity and CPU, ±25% for p99): "
        + ", ".join(f"{FIGURE_NAMES[f]} ±{m['margin']:.0%}" for f, m in margins.items())
        + ". Verdict per variant: `worse` where some step's whole interval lies past the "
          "margin on the bad side, `no worse` where no step's reaches past it, `open` "
          "otherwise."))
    trends = pd.DataFrame(growth.get("trends") or [])
    if not trends.empty:
        rows = [[r["variant"], FIGURE_NAMES[r["figure"]],
                 f"{r['per_tenfold']:.3f}x [{fmt(r['per_tenfold_low'], '{:.3f}')}, "
                 f"{fmt(r['per_tenfold_high'], '{:.3f}')}]", f"{r['windows']}"]
                for r in trends.to_dict("records")]
        blocks.append(table_block(
            ("variant", "figure", "change per tenfold live users [95% interval]", "windows"),
            rows, "The trend over every step, not two end points: a least-squares line "
                  "through every window's log ratio against log10 of the live users."))
    blocks.append(verdict("service as live users grow"))
    return blocks


def pauses_section(summary: dict[str, Any], charts: dict[str, Path], seeding: pd.DataFrame,
                   settings: dict[str, Any], verdict: Any) -> list[Block]:
    storms = pd.DataFrame(summary.get("storms") or [])
    load, growth = settings.get("storm_load", 0.25), settings.get("storm_growth", 0.4)
    blocks = [Block("h2", "Section. The collector's pauses as live users grow"),
              Block("p", "CPython stops the server for every garbage collection, and a full "
                         "one walks every object the process keeps: a store of sessions in "
                         "the process among them. It runs when what survived the last one "
                         "has grown by a quarter, so churn at a steady rate rarely meets one "
                         "in a large store; a morning's logins do. So at the storm's sizes "
                         "the in-process store meets a login storm: half its requests "
                         f"logins, at {load:.0%} of its capacity per core for reads, until a "
                         "second after the first full collection it meets, or until "
                         f"{growth:.0%} of its live users have logged in anew (at most "
                         f"{settings.get('storm_max_s', '?')} s). Beside it: the same store "
                         "run with the remedy (`gc.freeze` after seeding and every 20,000 "
                         "logins, so the collector no longer walks it) and the control, a "
                         "server keeping nothing per user, each meeting the store's storm as "
                         "it ran (its rate and length); every other variant meets one as "
                         f"long, at {load:.0%} of its own capacity. Pauses are timed inside "
                         "the server (gc.callbacks); the reads' longest wait is what a "
                         "client saw.")]
    if storms.empty:
        return [*blocks, Block("p", "This run has no login storm: the axis is not judged.")]
    blocks.append(Block("image", charts["pauses"], "Each storm's longest full collection "
                        "and its reads' longest wait; the remedy hatched."))
    rows = [[r["variant"] + (f" + {r['remedy']}" if r["remedy"] else ""),
             f"{r['population']:,}", fmt(r["target_rps"], "{:,.0f}"),
             fmt(r["seconds"], "{:.1f}"), f"{r['logins']:,} ({r['grown_by']:.0%})",
             fmt(r["gc_full_pauses"], "{:.0f}"), fmt(r["gc_full_longest_ms"], "{:,.1f}"),
             fmt(r.get("p99_ms"), "{:.2f}"), fmt(r["max_ms"], "{:,.1f}"),
             fmt(r.get("login_max_ms"), "{:,.1f}"), fmt(r["error_rate"], "{:.2%}")]
            for r in storms.to_dict("records")]
    blocks.append(table_block(
        ("server", "live users", "offered req/s", "seconds", "logins (of the live users)",
         "full collections", "longest full collection ms", "reads' p99 ms",
         "reads' longest ms", "logins' longest ms", "errors"), rows,
        "A server + gc.freeze, and the control, met the in-process store's storm: its rate "
        "and its length. The others met their own, at their own capacity's share, for as "
        "long as the in-process store's ran. A percentile only where the storm holds enough "
        "reads for it."))
    if not seeding.empty and "seed_gc_longest_ms" in seeding:
        serving = {(r["variant"], r["population"]): r.get("b_service_longest_ms")
                   for r in (summary.get("growth") or {}).get("steps", [])
                   if r["figure"] == "capacity"}
        rows = [[r["variant"], f"{int(r['size']):,}", fmt(r["seed_seconds"], "{:.2f}"),
                 fmt(r["seed_gc_longest_ms"], "{:,.1f}"),
                 fmt(serving.get((r["variant"], int(r["size"]))), "{:,.1f}")]
                for r in seeding.to_dict("records")]
        blocks.append(table_block(
            ("variant", "seeded to", "seconds", "longest pause so far ms",
             "of it while serving ms"), rows,
            "Seeding, apart: `POST /admin/seed` loads a store in bulk, faster than any "
            "service grows one, and its full collections walk it then. After each seeding, "
            "the longest pause the server has had, and the longest it had while serving "
            "(outside seeding): where the first is larger, seeding set it; those pauses are "
            "never counted as the service's."))
    blocks.append(verdict("the collector's pauses as live users grow"))
    return blocks


def connections_block(connections: pd.DataFrame) -> Block:
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
        "its own user (its own seeded session, a credential minted for it, or its own "
        "logged-in user), the same total rate spread over them. Bytes per connection: what "
        "the server's peak RSS grew by per connection over the fewest measured. "
        + primed_words(connections))


def primed_words(connections: pd.DataFrame) -> str:
    """Whether every connection had served a request when the server's RSS was read."""
    if bool(connections["primed"].all()):
        return ("Every connection opened and served one read before the warm-up (at most 256 "
                "opening at a time): the bytes are an open, used connection's, whatever the "
                "window's length.")
    return ("This run's connections opened all at once and served only the requests the "
            "window sent them: where they outnumber those, most had served none, so its "
            "bytes per connection undercount a used one's and grow with the window's length "
            "(runs from 4 December 2026 on have every connection serve one read first).")


def bytes_per_connection(summary: dict[str, Any]) -> dict[str, float]:
    """Per variant, what one open connection costs the server, at the most connections."""
    found: dict[str, float] = {}
    for r in sorted(summary.get("connections_curve") or [], key=lambda r: r["connections"]):
        if r.get("bytes_per_connection") is not None:
            found[r["variant"]] = r["bytes_per_connection"]
    return found
