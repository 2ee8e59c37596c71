"""The report's appendices: where the microseconds go, the knee, the live-user steps in
detail, connections, the calibration and its targets, the run itself, and the threats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis import instructions
from analysis.load import Run, read_json
from analysis.report.blocks import Block, fmt, table_block
from analysis.stats import GeoMean

# Below this a primitive's cost is under the resolution of the auth histograms (whole
# microseconds): a ratio to it would divide by the timer's rounding.
AUTH_RESOLUTION_US = 1.0


def instruction_blocks(run: Run, variants: list[str], figures: dict[str, dict[str, Any]]
                       ) -> list[Block]:
    """Instructions per request under callgrind, per variant: the figure that compares across
    days and machines with the same software."""
    state = run.manifest.get("instructions")
    if state is not None and not state.get("measured"):
        return [Block("p", f"Instructions per request: not measured ({state.get('why_not')}).")]
    rows = [[v, fmt(figures[v].get("instructions_per_request"), "{:,.0f}"),
             fmt(figures[v].get("server_instructions_per_request"), "{:,.0f}"),
             fmt(figures[v].get("redis_instructions_per_request"), "{:,.0f}"),
             fmt(figures[v].get("processes"), "{}"), fmt(figures[v].get("spread"), "{:.2%}")]
            for v in variants if figures[v].get("instructions_per_request") is not None]
    if not rows:
        return []
    versions = run.manifest.get("versions", {})
    counted = instructions.processes(run.path)
    return [table_block(
        ("variant", "instructions per request", "of which server", "of which Redis",
         "fresh processes", "spread between them"), rows,
        "Counted by valgrind's callgrind (" + str((state or {}).get("valgrind")) + "), with "
        "counting off at start, address randomisation off and PYTHONHASHSEED=0: after a "
        "warm-up, " + windows_words(counted) + timers_words(counted)
        + ". Close to deterministic for the same software (Python "
        + str(versions.get("python")) + ", aiohttp " + str(versions.get("aiohttp"))
        + ", PyJWT " + str(versions.get("pyjwt")) + "), whatever else the machine does: "
        "compare it across runs with `python -m analysis compare`. Spread: (largest - "
        "smallest) / median over the processes.")]


def windows_words(counted: pd.DataFrame) -> str:
    """How a run's counted processes (`instructions.processes`) counted one request: one
    short and one long window, or rounds of them with medians."""
    repeats = set(counted["repeats"]) if not counted.empty else {1}
    if repeats == {1}:
        return ("two windows of a fixed number of requests sent one at a time, the "
                "difference of their counts over the difference of their lengths")
    rounds = "/".join(str(r) for r in sorted(repeats))
    return (f"{rounds} rounds of a short and a long window of a fixed number of requests "
            "sent one at a time, the difference of the medians of their counts over the "
            "difference of their lengths")


def timers_words(counted: pd.DataFrame) -> str:
    """Whether a run's counted processes (`instructions.processes`) took their timers off
    their windows (what each runs a second idle: Redis's cron above all)."""
    if counted.empty:
        return ""
    if counted["timers_off"].all():
        return (", with what each process runs a second when idle (its timers: Redis's cron, "
                "session-memory's sweep), measured after the windows, taken off each window "
                "for its length")
    return ("; this run did not take the processes' timers off, so the Redis column counts "
            "Redis's cron over the windows' lengths too: an upper bound, some 3 to 5 times "
            "its commands")


def generators(summary: dict[str, Any]) -> str:
    """The generators that measured the headline figures, by name."""
    names = sorted({f["generator"] for f in summary["variants"].values() if f.get("generator")})
    described = {"loadgen": "authscale-loadgen (the fast C generator, fixed rate)",
                 "locust": "Locust"}
    return ", ".join(described.get(n, n) for n in names) or "–"


def capacity_blocks(variants: list[str], figures: dict[str, dict[str, Any]],
                    summary: dict[str, Any], charts: dict[str, Path]) -> list[Block]:
    """Section 3: what each variant serves flat out, its knee, and its CPU model."""
    blocks = [Block("h2", "Appendix. Capacity alone and the knee")]
    rows = []
    for v in variants:
        f = figures[v]
        if f.get("capacity_rps") is None:
            continue
        low, high = f.get("capacity_rps_interval") or [None, None]
        model = f.get("cpu_model") or {}
        capacity = fmt(f["capacity_rps"], "{:,.0f}") + (
            " (one window: no interval)" if low is None or low == high
            else f" [{fmt(low, '{:,.0f}')}, {fmt(high, '{:,.0f}')}]")
        rows.append([v, capacity, fmt(f.get("capacity_server_cpu_percent"), "{:.0f}%"),
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
             fmt(c.get("server_cpu_us_per_request"), "{:.0f}"),
             fmt(c.get("redis_cpu_us_per_request"), "{:.0f}"), duet_cell(c)]
            for v, c in data["variants"].items()]
    blocks = [
        Block("p", f"The calibration this run's rates came from (`calibration.json`, "
                   f"{data.get('created_at', 'undated')}): the auth path timed one request at "
                   f"a time, and the capacity, the highest rate with no error, p99 within "
                   f"{data.get('p99_bound_ms', '?')} ms and 95% of the rate achieved."),
        table_block(("variant", "auth µs p50, alone", "capacity req/s", "limited by",
                     "flat out req/s (one window)", "server CPU µs per request",
                     "Redis CPU µs per request", "duet: capacity / none's [95%]"), rows,
                    "Limited by 'server': its core at least 90% busy with the generator's "
                    "under 80%; 'generator': the generator's core 80% busy or more; "
                    "'errors'; 'latency': the p99 bound alone. Flat out: one closed-loop "
                    "window, where the search starts (0.6 of it). CPU is process CPU time "
                    "(the server's; Redis's from INFO), at the capacity. Duet: the variant "
                    "and none on the server core at once, flat out, requests per CPU-second "
                    "of each (none against itself is the A/A control)."),
    ]
    targets = [[t["variant"], t["what"], fmt(t["value"], "{:.2f}"), t["target"] or "–",
                {True: "yes", False: "no", None: "–"}[t["met"]]]
               for t in data.get("targets", [])]
    if targets:
        blocks.append(table_block(("variant", "ratio", "value", "target", "met"), targets,
                                  "The targets, each measured within the calibration's one "
                                  "run: auth p50 over the primitive(s) its path runs, at most "
                                  "1.2 for the JWTs and 1.3 for session-redis (the path adds "
                                  "little to the primitive); session-memory's auth p50 at "
                                  "most 5 µs; capacity over none's, at least the floor set "
                                  "for each (a variant far below would mean waste in its "
                                  "path); and the capacities' ratio to none's against the "
                                  "duet's within 1 ± 0.15, where the A/A control held "
                                  "(else '–')."))
    return blocks


def duet_cell(calibrated: dict[str, Any]) -> str:
    """A variant's capacity relative to the control's, from the calibration's duet."""
    duet = calibrated.get("duet_vs_none")
    if not duet or duet.get("ratio") is None:
        return "–"
    words = f"{duet['ratio']:.3f}x"
    if duet.get("ratio_low") is not None:
        words += f" [{duet['ratio_low']:.3f}, {duet['ratio_high']:.3f}]"
    return words + ("" if duet.get("control_holds") else " (A/A control off: not trusted)")


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
        "Two servers sharing one core in the duet also share its caches: each evicts the "
        "other's working set, a cost a server alone on its core would not pay. It hits both "
        "sides, not necessarily alike; the instruction count, which no neighbour moves, is "
        "printed beside every duet ratio for that reason.",
        "The instruction count sees the server's user space only: not the kernel's socket "
        "work, nor Redis's. Where a design's cost is in a round trip it reads low; the "
        "duet's CPU time, not the count, decides the verdict.",
        "The network's round trip is a forwarder on loopback holding each direction for "
        "half of it (this kernel has no netem): no loss, no jitter, no bandwidth limit; the "
        "forwarder's own CPU is on the generator's core, and its flat-out figures are one "
        "window each, measured one after the other.",
        "A shared, virtualised machine: neighbours add noise, and this VM's core changes "
        "speed by up to 1.9x within a second, which is why compared figures are measured "
        "at the same time (the duet) or in interleaved rounds, and carry intervals.",
        "Python servers: per-request overheads of the framework dominate; a compiled server "
        "would shrink them and make the auth primitive a larger share of each request, in "
        "either direction: a compiled token verifier shrinks the token's side as well.",
        "Locust (churn, replicas, logout) paces each user and waits for each answer: its "
        "figures are behaviour, not latency. Latency and capacity come from "
        "authscale-loadgen, open at a fixed rate or closed flat out, whose own floor "
        "(against nginx) is measured in the same rounds.",
        "Memory is resident set size after seeding; CPython does not always return freed "
        "memory, so a server's RSS includes allocator slack.",
    ]
    if (machine.get("logical_cores") or 0) > 2:
        items.append("A bigger machine would let each component have its own cores; this "
                     "run kept the same two-core layout.")
    return items




def microseconds_blocks(run: Run, summary: dict[str, Any], charts: dict[str, Path],
                        variants: list[str], primitives: pd.DataFrame) -> list[Block]:
    """Where a request's authentication time goes: each variant's in-server auth cost
    against the primitives its path runs (per token library), then the instructions."""
    figures = summary["variants"]
    prims = primitives.drop_duplicates("primitive").set_index("primitive")["us_per_op"] \
        if not primitives.empty else {}
    rows = []
    for v in variants:
        f = figures[v]
        runs, shown = run.variants.primitives(v)
        costs = [(n, prims[n]) for n in runs + shown if n in prims]
        primary = sum(prims[n] for n in runs) if runs and all(n in prims for n in runs) \
            else None
        ratio = (f["auth_us_p50"] / primary if primary and primary >= AUTH_RESOLUTION_US
                 and f.get("auth_us_p50") else None)
        rows.append([v, run.variants.facts.get(v, {}).get("library") or "–",
                     fmt(f.get("auth_us_p50"), "{:.1f}"), fmt(f.get("auth_us_p99"), "{:.1f}"),
                     "; ".join(f"{n}: {c:.2f} µs" for n, c in costs) or "–",
                     fmt(ratio, "{:.1f}x"), fmt(f.get("server_cpu_us_per_request"), "{:.0f}"),
                     fmt(f.get("redis_cpu_us_per_request"), "{:.0f}")])
    floors = [f"{n}: {prims[n]:.2f} µs" for n in prims.index if "floor" in n] \
        if len(prims) else []
    blocks = [Block("h2", "Appendix. Where the microseconds go"),
              Block("image", charts["auth"], "The server's own time authenticating each "
                    "request (Server-Timing), percentiles of every request at the common "
                    "rate, one panel per side of the claim. Time, not CPU: while a Redis "
                    "call awaits, other requests run."),
              table_block(("variant", "token library", "auth µs p50", "auth µs p99",
                           "primitive alone (tight loop)", "auth / primitive",
                           "server CPU µs/request (alone, common rate)",
                           "Redis CPU µs/request"), rows,
                          "The primitive is what the variant's auth path runs, timed alone "
                          "on the server's core: each token library's own decode of the "
                          "same token (every claim required), a Redis round trip, a Fernet "
                          "decrypt, a dict lookup; the bare signature check beside it. No "
                          "ratio where the primitive is under 1 µs, the auth figures' "
                          "resolution. CPU here is the slices' (psutil, 10 ms ticks), alone "
                          "on the core; the duet's figures (section 3) are the ones compared."
                          + (" Floors: " + "; ".join(floors) + "." if floors else ""))]
    return blocks + instruction_blocks(run, variants, figures)


def failures_blocks(run: Run, summary: dict[str, Any]) -> list[Block]:
    """Everything that did not go as planned: failed components, generator-bound cells,
    cells left out of the comparisons, duet windows left out, and every calibration
    target that was not met."""
    manifest = run.manifest
    items = [f"{f['experiment']} / {f['variant']}: {f['reason']}"
             for f in manifest.get("failures", [])]
    items += [f"generator-bound: {r['variant']} at {r['target_rps']:g} req/s"
              for r in summary["latency_curve"] if r.get("generator_bound")]
    items += [f"left out of the comparisons: {c['variant']} round {c['repetition']}, "
              f"{fmt(c['achieved_rps'], '{:,.0f}')} of {fmt(c['target_rps'], '{:,.0f}')} "
              f"req/s with the generator at {fmt(c['generator_cpu_max'], '{:.0f}')}% CPU"
              for c in summary.get("left_out", [])]
    items += [f"duet {r['a']} → {r['b']} ({r['phase']}): {r['left_out']} of {r['windows']} "
              "windows left out" for r in summary.get("duet", {}).get("ratios", [])
              if r["left_out"]]
    items += [f"live users, {r['variant']} at {r['population']:,} ({r['figure']}): "
              f"{r['left_out']} of {r['windows']} windows left out"
              for r in (summary.get("growth") or {}).get("steps", []) if r["left_out"]]
    items += [f"live users, the A/A control's {f}: strayed ±{m['aa']:.0%}, past twice its "
              f"±{m['floor']:.0%} floor" for f, m in
              ((summary.get("growth") or {}).get("margins") or {}).items()
              if m.get("trusted") is False]
    for phase, c in (summary.get("duet", {}).get("controls") or {}).items():
        if c is not None and not c["holds"]:
            items.append(f"the A/A control ({phase}) was not within ±3%: "
                         f"{GeoMean.of(c).words()}")
    path = run.path / "calibration.json"
    if path.exists():
        items += [f"calibration target not met: {t['variant']}, {t['what']} = "
                  f"{t['value']:.2f} against {t['target']}"
                  for t in read_json(path).get("targets", []) if t["met"] is False]
    for name in ("instructions", "store_ceiling"):
        state = manifest.get(name) or {}
        if state and not state.get("measured"):
            items.append(f"{name} not measured: {state.get('why_not')}")
    floor = (manifest.get("latency") or {}).get("floor") or {}
    if floor and not floor.get("measured"):
        items.append(f"the generator's floor not measured: {floor.get('why_not')}")
    return [Block("h2", "Appendix. Failures and flags"),
            Block("list", items or ["none: every planned measurement ran, no cell or window "
                                    "left out, every target met"])]


def run_blocks(run: Run, summary: dict[str, Any]) -> list[Block]:
    """The run itself: profile, status, commit, machine, pinning, versions, rates."""
    manifest = run.manifest
    git, machine = manifest.get("git", {}), manifest.get("machine", {})
    pinning, versions = manifest.get("pinning", {}), manifest.get("versions", {})
    return [Block("h2", "Appendix. This run"), Block("p", (
        f"Profile `{manifest.get('profile')}`, status **{manifest.get('status')}** "
        f"({manifest.get('status_detail')}), commit `{(git.get('commit') or '?')[:12]}`"
        f"{' (uncommitted changes)' if git.get('dirty') else ''}, "
        f"{manifest.get('started_at')} to {manifest.get('ended_at')}. Machine: "
        f"{machine.get('cpu_model')}, {machine.get('logical_cores')} cores, "
        f"{fmt((machine.get('memory_bytes') or 0) / 2**30, '{:.1f}')} GiB. Server pinned to "
        f"CPU {pinning.get('server_cpus')}, load generator to CPU "
        f"{pinning.get('generator_cpus')}, Redis to CPU {pinning.get('redis_cpus')}. "
        f"{placement_sentence(manifest.get('placement', {}))}"
        f"Rate model: {manifest.get('rate_model')}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v and k != "redis_server_binary")
        + ". " + rates_origin(manifest, summary)))]
