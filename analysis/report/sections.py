"""The report's sections, one per axis of the verdict: what was measured, the figure with
its interval, the chart, what it means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.axes.common import TOO_FEW
from analysis.charts import EXTRAPOLATE_TO
from analysis.report.blocks import Block, fmt, table_block
from analysis.report.users import bytes_per_connection, connections_block
from analysis.stats import GeoMean, ratio_words


def axis_row(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((a for a in summary["verdict"]["axes"] if a["axis"] == name), None)


def verdict_line(summary: dict[str, Any], name: str) -> Block:
    """An axis's verdict and the figures behind it, as a closing paragraph."""
    row = axis_row(summary, name)
    if row is None:
        return Block("p", "Not judged in this run.")
    return Block("p", f"**Does the claim hold here? {row['holds']}.** {row['detail']}.")


def memory_section(summary: dict[str, Any], charts: dict[str, Path],
                   variants: list[str]) -> list[Block]:
    figures = summary["variants"]
    connection = bytes_per_connection(summary)
    rows = []
    for v in variants:
        f = figures[v]
        b = f.get("bytes_per_session")
        low, high = f.get("bytes_per_session_interval") or [None, None]
        if b is None and v not in connection:
            continue
        rows.append([v, fmt(b, "{:,.0f}"), f"{fmt(low, '{:,.0f}')} to {fmt(high, '{:,.0f}')}",
                     fmt(f.get("server_bytes_per_session"), "{:,.0f}"),
                     fmt(f.get("redis_bytes_per_session"), "{:,.0f}"),
                     *[fmt(b * n / 2**30 if b is not None else None, "{:,.2f}")
                       for n in EXTRAPOLATE_TO],
                     fmt(connection.get(v), "{:,.0f}")])
    blocks = [
        Block("h2", "Section. Memory per live user"),
        Block("p", "Live users grown step by step, the server's RSS and Redis's used memory "
                   "read at each: what one more live user costs is the slope of a "
                   "least-squares line through them. A stateless token's flat line is "
                   "measured too, with that many distinct tokens presented. Beside it, what "
                   "one more open keep-alive connection costs the server: users at once are "
                   "connections too, whichever design."),
        Block("image", charts["memory"], "Memory above each server's own baseline (its "
              "first step) against live users, one panel per side of the claim; the line is "
              "the fit, its slope in the legend."),
        table_block(("variant", "bytes per live user", "95% interval of the slope",
                     "of which server", "of which Redis",
                     *[f"GiB at {n:,.0f} users" for n in EXTRAPOLATE_TO],
                     "bytes per open connection"), rows,
                    "Bytes per open connection: from the connections experiment below, at "
                    "the most connections it opened.")]
    connections = pd.DataFrame(summary.get("connections_curve") or [])
    if not connections.empty:
        blocks.append(connections_block(connections))
    return [*blocks, verdict_line(summary, "memory per live user")]


DUET_TEXT = (
    "Both servers of a pair on the server core at the same time, each driven by its own "
    "fast generator from the other core, in short windows, both restarted every few windows "
    "(a fresh process, hash seed and address layout). A slow stretch of the core hits both "
    "alike, so their ratio keeps what the code costs: this VM's core changes speed by up to "
    "1.9x within a second, which a ratio of two windows measured one after the other carries. "
    "Flat out, each server's requests per CPU-second of its own process (schedstat, in "
    "nanoseconds) is its capacity per core; at one fixed rate each, the same for both, the "
    "server's and its own Redis's CPU per request. The figure is the geometric mean of the "
    "per-window ratios with a 95% interval (Student's t on their logarithms). The A/A control "
    "runs one variant against itself the same way: its interval is this run's noise floor, "
    "and where it strays beyond ±3% the axes it feeds are undetermined. Beside each ratio, "
    "the instruction count's (callgrind, user space only: it does not see the kernel's work, "
    "nor move with the day).")


def duet_section(summary: dict[str, Any], charts: dict[str, Path], margin: float
                 ) -> list[Block]:
    blocks = [Block("h2", "Section. Capacity per core and CPU per request"), Block("p", DUET_TEXT)]
    ratios = summary.get("duet", {}).get("ratios", [])
    if not ratios:
        return [*blocks, Block("p", "This run has no duet: these axes are not judged.")]
    counts = summary["variants"]
    rows = []
    for r in ratios:
        a, b = counts.get(r["a"], {}), counts.get(r["b"], {})
        counted = None
        if a.get("instructions_per_request") and b.get("instructions_per_request"):
            counted = b["instructions_per_request"] / a["instructions_per_request"]
            counted = 1 / counted if r["phase"] == "flat" else counted
        unit = "{:,.0f}" if r["phase"] == "flat" else "{:.0f} µs"
        rows.append([
            ("A/A: " if r["kind"] == "aa" else "") + f"{r['a']} → {r['b']}",
            "requests per CPU-second, flat out" if r["phase"] == "flat"
            else f"CPU per request at {r['rate']:,.0f} req/s each",
            fmt(r.get("a_median"), unit), fmt(r.get("b_median"), unit),
            GeoMean.of(r).words(),
            f"{r['n']}" + (f" ({r['left_out']} left out)" if r["left_out"] else ""),
            fmt(r.get("core_busy_median"), "{:.0%}"), fmt(counted, "{:.3f}x")])
    blocks += [
        Block("image", charts["duet"], "The duet's ratios token / session (the A/A control "
              f"first, grey: the noise floor) with their 95% intervals, the ±{margin:.0%} "
              "band where a difference counts as none, and the instruction count's ratio "
              "(diamond)."),
        table_block(("pair (a → b)", "figure", "a", "b", "b / a [95% interval]", "windows",
                     "core busy (median)", "instructions' ratio"), rows,
                    "Windows left out: flat out with the two servers using under 90% of the "
                    "core (they were not the limit), or at a rate a side served under 95% "
                    "of. Instructions' ratio: b / a of instructions per request for CPU, "
                    "a / b for capacity (a core serves the inverse of the work per "
                    "request)."),
        verdict_line(summary, "capacity per server core (flat out)"),
        verdict_line(summary, "CPU per request (server + Redis CPU time)"),
        Block("p", "Capacity, CPU, the time spent authenticating and latency at load are "
                   "largely one cost seen four ways: what a request's authentication costs "
                   "the server's core.")]
    return blocks


def rounds_section(summary: dict[str, Any], charts: dict[str, Path], margin: float,
                   rates_text: str) -> list[Block]:
    blocks = [Block("h2", "Section. Time spent authenticating and latency at equal load"),
              Block("p", "Every variant alone on the server core at the same fixed rate, in "
                         "randomized interleaved slices (each round every variant once, in an "
                         "order drawn anew each round from the run's id; never in a duet, "
                         "where the co-running server would add its queue to yours), each "
                         "request timed from when it was due. The generator's own floor at "
                         "that rate, against nginx, is measured in the same rounds: a p99 "
                         "near it says nothing about the server. The ratio token / session "
                         "is taken round by round; its order-statistic interval on the "
                         f"median carries its real coverage. No measurable difference only "
                         f"when the whole interval lies within ±{margin:.0%}. " + rates_text),
              Block("image", charts["latency"], "p50 and p99 at the common rate, the median "
                    "over the rounds with its interval; the grey band is the generator's "
                    "floor (nginx).")]
    curve = pd.DataFrame(summary.get("latency_curve") or [])
    if not curve.empty:
        def cell(r: dict[str, Any], p: str) -> str:
            if r.get(f"{p}_ms") is None:
                return f"– ({r['requests_min']:,} requests a cell: too few)"
            return f"{r[f'{p}_ms']:.3f} [{r[f'{p}_ms_low']:.3f}, {r[f'{p}_ms_high']:.3f}]"

        rows = [[("nginx (the generator's floor)" if r["variant"] == "nginx" else r["variant"]),
                 fmt(r["target_rps"], "{:,.0f}"), fmt(r["achieved_rps"], "{:,.0f}"),
                 f"{r['repetitions']} × {r['seconds_per_cell']:.1f} s",
                 f"{r['requests_min']:,}", cell(r, "p50"), cell(r, "p99"),
                 fmt(r["error_rate"], "{:.2%}"), "yes" if r["generator_bound"] else "no"]
                for r in curve.sort_values(["target_rps"]).to_dict("records")]
        blocks.append(table_block(("variant", "target req/s", "achieved", "slices",
                                   "requests per slice (fewest)", "p50 ms", "p99 ms",
                                   "errors", "generator-bound"), rows,
                                  "The median over the rounds and its order-statistic "
                                  "interval. A percentile only where every slice holds ten "
                                  "requests beyond it (p99: 1,000)."))
    rows = [[f"{r['session']} → {r['token']}", r["axis"], fmt(r["session_median"], "{:,.2f}"),
             fmt(r["token_median"], "{:,.2f}"),
             ratio_words(r["ratio"], r["ratio_low"], r["ratio_high"], r["pairs"], unit="round"),
             f"{r['coverage']:.1%}", str(r["pairs"]), r["verdict"]]
            for r in summary.get("pairs", []) if r["verdict"] != TOO_FEW]
    if rows:
        blocks.append(table_block(("pair (session → token)", "figure", "session", "token",
                                   "token / session [interval]", "coverage", "rounds",
                                   f"verdict (±{margin:.0%})"), rows,
                                  "Time authenticating: µs (Server-Timing p50, time spent, "
                                  "awaits included); latency: ms (client p99)."))
    blocks.append(verdict_line(summary, "time spent authenticating (Server-Timing p50)"))
    blocks.append(verdict_line(summary, "latency at equal load (p99)"))
    return blocks


def wire_section(summary: dict[str, Any], charts: dict[str, Path], variants: list[str],
                 requests_per_day: float) -> list[Block]:
    figures = summary["variants"]
    rows = [[v, fmt(figures[v].get("header_bytes"), "{}"),
             fmt(figures[v]["header_bytes"] * requests_per_day / 1e9
                 if figures[v].get("header_bytes") is not None else None, "{:,.1f}")]
            for v in variants if figures[v].get("header_bytes") is not None]
    return [Block("h2", "Section. Bytes on the wire"),
            Block("image", charts["wire"], "The request header that carries each credential, "
                  "in bytes: the declared pairs side by side."),
            table_block(("variant", "bytes per request",
                         f"GB/day at {requests_per_day:,.0f} requests/day"), rows),
            verdict_line(summary, "bytes on the wire per request")]


def scaling_section(summary: dict[str, Any], charts: dict[str, Path],
                    variants: list[str]) -> list[Block]:
    figures = summary["variants"]
    rows = [[v, fmt(figures[v].get("replicas_random_failure_rate"), "{:.1%}"),
             fmt(figures[v].get("replicas_sticky_failure_rate"), "{:.1%}"),
             fmt(figures[v].get("replicas_random_p99_ms"), "{:.2f}"),
             fmt(figures[v].get("replicas_sticky_p99_ms"), "{:.2f}")]
            for v in variants if figures[v].get("replicas_random_failure_rate") is not None]
    blocks = [Block("h2", "Section. Scaling out without sticky routing"),
              Block("p", "Several replicas of a variant sharing its keys (and its Redis), "
                         "each request sent to a random replica, then each user to one "
                         "replica (sticky routing)."),
              Block("image", charts["replicas"], "Failed requests, random against sticky "
                    "routing; a zero is drawn as a labelled zero.")]
    if rows:
        blocks.append(table_block(("variant", "failed, random", "failed, sticky",
                                   "p99 ms random", "p99 ms sticky"), rows))
    blocks.append(verdict_line(summary, "scaling out without sticky routing"))
    return blocks


def logout_section(summary: dict[str, Any], charts: dict[str, Path], variants: list[str],
                   settings: dict[str, Any]) -> list[Block]:
    figures = summary["variants"]
    rows = [[v, {True: "yes", False: "no"}.get(figures[v].get("logout_revokes"), "–"),
             fmt(figures[v].get("logout_refused_after_s_p50"), "{:.4f} s"),
             fmt(figures[v].get("logout_refused_after_s_max"), "{:.4f} s"),
             fmt(figures[v].get("logout_expires_after_s_p50"), "{:.2f} s"),
             f"{fmt(figures[v].get('logout_resolution_s_p50'), '{:.4f} s')} "
             f"({fmt(figures[v].get('logout_resolution_s'), '{:.4f} s')})",
             f"{figures[v].get('logout_observations', 0)}"]
            for v in variants if figures[v].get("logout_revokes") is not None]
    blocks = [Block("h2", "Section. Logout"),
              Block("image", charts["revocation"], (
                  "After logout the old credential is presented to every replica every "
                  f"{fmt(settings.get('probe_interval_s'), '{:g}', '?')} s until each "
                  "refuses it; the bar runs to the median refusal, the whisker to the "
                  "latest. Sessions and tokens lived "
                  f"{fmt(settings.get('credential_ttl_s'), '{:g}', '?')} s in this "
                  "experiment, so a credential logout cannot revoke is seen to expire."))]
    if rows:
        blocks.append(table_block(("variant", "logout revokes", "refused after (median)",
                                   "refused after (latest)", "expired after",
                                   "resolution: median (widest)", "observations"), rows,
                                  "Resolution: the gap between the last probe a replica "
                                  "accepted and its first refusal; the switch happened in "
                                  "it."))
    blocks.append(verdict_line(summary, "logout (revocation)"))
    return blocks
