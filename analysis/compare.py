"""Compare two runs, like pyperformance's compare: which figures moved beyond their noise,
and only where the two runs measured like with like."""

from __future__ import annotations

from typing import Any

from analysis.instructions import SAME_SOFTWARE_AGREEMENT
from analysis.load import Run
from analysis.summary import summarize

# Figures compared, with their unit, which direction is better, and whether they depend on
# the rate they were measured at (then only runs at the same rate compare).
FIGURES = (("latency_ms_p50", "ms", "lower", True), ("latency_ms_p99", "ms", "lower", True),
           ("auth_us_p50", "µs", "lower", True), ("auth_us_p99", "µs", "lower", True),
           ("cpu_us_per_request", "µs", "lower", True), ("rps", "req/s", "higher", True))
# Memory is a fit, not a median over repetitions: moved when the slope intervals are apart.
MEMORY = ("bytes_per_session", "B", "lower", False)
# Instructions per request: counted, not timed; moved when beyond 1%, and comparable only
# between the same software.
INSTRUCTIONS = ("instructions_per_request", "instructions", "lower", False)
SOFTWARE = ("python", "aiohttp", "aiohttp-session", "pyjwt", "cryptography", "redis",
            "hiredis", "uvloop", "redis_server")
NOT_COMPARABLE = "not comparable"


def unlike(base: dict[str, Any], changed: dict[str, Any]) -> dict[str, str]:
    """Why timed figures of the two runs cannot be compared at all (machine, profile), and
    why instruction counts cannot (software), keyed by what they rule out."""
    reasons = {}
    machine = ("cpu_model", "logical_cores")
    a, b = base.get("machine", {}), changed.get("machine", {})
    if any(a.get(k) != b.get(k) for k in machine):
        reasons["timed"] = (f"measured on different machines ({a.get('cpu_model')}, "
                            f"{a.get('logical_cores')} cores; {b.get('cpu_model')}, "
                            f"{b.get('logical_cores')} cores)")
    elif base.get("profile") != changed.get("profile"):
        reasons["timed"] = (f"different profiles ({base.get('profile')}, "
                            f"{changed.get('profile')}): other windows and rates")
    va, vb = base.get("versions", {}), changed.get("versions", {})
    moved = [k for k in SOFTWARE if va.get(k) != vb.get(k)]
    if moved:
        reasons["counted"] = "different software: " + ", ".join(
            f"{k} {va.get(k)} → {vb.get(k)}" for k in moved)
    return reasons


def compare(base: dict[str, Any], changed: dict[str, Any],
            reasons: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per variant and figure present in both summaries; a figure the two runs did
    not measure alike says why, with no verdict word."""
    reasons = reasons or {}
    rows = []
    for variant in changed["variants"]:
        a, b = base["variants"].get(variant), changed["variants"][variant]
        if a is None:
            continue
        for key, unit, better, at_rate in (*FIGURES, MEMORY, INSTRUCTIONS):
            if a.get(key) is None or b.get(key) is None:
                continue
            ratio = b[key] / a[key] if a[key] else float("nan")
            why = reasons.get("counted" if key == INSTRUCTIONS[0] else "timed")
            if why is None and at_rate and a.get("target_rps") != b.get("target_rps"):
                why = (f"measured at {a.get('target_rps'):,.0f} and "
                       f"{b.get('target_rps'):,.0f} req/s: it moves with the rate")
            if why is not None:
                rows.append({"variant": variant, "figure": key, "unit": unit, "base": a[key],
                             "changed": b[key], "ratio": ratio, "verdict": NOT_COMPARABLE,
                             "why": why})
                continue
            if key == INSTRUCTIONS[0]:
                significant = abs(ratio - 1) > SAME_SOFTWARE_AGREEMENT
            else:
                ia, ib = a.get(f"{key}_interval"), b.get(f"{key}_interval")
                significant = bool(ia and ib and None not in ia and None not in ib
                                   and (ia[1] < ib[0] or ib[1] < ia[0]))
            if not significant:
                verdict = "no measurable difference"
            elif (b[key] < a[key]) == (better == "lower"):
                verdict = "better"
            else:
                verdict = "worse"
            rows.append({"variant": variant, "figure": key, "unit": unit, "base": a[key],
                         "changed": b[key], "ratio": ratio, "verdict": verdict, "why": ""})
    return rows


def verdicts(base: dict[str, Any], changed: dict[str, Any]) -> list[dict[str, Any]]:
    """Each verdict axis of both runs side by side: does the claim come out the same?"""
    before = {a["axis"]: a["holds"] for a in base["verdict"]["axes"]}
    after = {a["axis"]: a["holds"] for a in changed["verdict"]["axes"]}
    return [{"axis": axis, "base": before.get(axis, "–"), "changed": after.get(axis, "–"),
             "same": before.get(axis) == after.get(axis)}
            for axis in dict.fromkeys([*before, *after])]


def compare_runs(base: Run, changed: Run) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    a, b = summarize(base), summarize(changed)
    return compare(a, b, unlike(base.manifest, changed.manifest)), verdicts(a, b)


def render(rows: list[dict[str, Any]], axes: list[dict[str, Any]], base: str,
           changed: str) -> str:
    lines = [f"# authscale compare: {base} -> {changed}", "",
             "| axis | base | changed | same verdict? |", "| --- | --- | --- | --- |"]
    lines += [f"| {a['axis']} | {a['base']} | {a['changed']} | "
              f"{'yes' if a['same'] else '**no**'} |" for a in axes]
    same = sum(a["same"] for a in axes)
    lines += ["", f"{same} of {len(axes)} axes give the same verdict.", "",
              "| variant | figure | base | changed | ratio | verdict |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        verdict = f"{r['verdict']}: {r['why']}" if r["why"] else r["verdict"]
        lines.append(f"| {r['variant']} | {r['figure']} ({r['unit']}) | {r['base']:.4g} | "
                     f"{r['changed']:.4g} | {r['ratio']:.3f}x | {verdict} |")
    compared = [r for r in rows if r["verdict"] != NOT_COMPARABLE]
    moved = [r for r in compared if r["verdict"] != "no measurable difference"]
    lines += ["", f"{len(moved)} of {len(compared)} figures compared moved beyond their "
                  f"noise; {len(rows) - len(compared)} could not be compared (said beside "
                  "each)."]
    return "\n".join(lines) + "\n"
