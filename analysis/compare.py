"""Compare two runs, like pyperformance's compare: which figures moved beyond their noise."""

from __future__ import annotations

from typing import Any

from analysis.load import Run
from analysis.summary import summarize

# Figures compared, with their unit and which direction is better.
FIGURES = (("latency_ms_p50", "ms", "lower"), ("latency_ms_p99", "ms", "lower"),
           ("auth_us_p50", "µs", "lower"), ("auth_us_p99", "µs", "lower"),
           ("cpu_us_per_request", "µs", "lower"), ("rps", "req/s", "higher"))
# Memory is a fit, not a median over repetitions: moved when the slope intervals are apart.
MEMORY = ("bytes_per_session", "B", "lower")


def compare(base: dict[str, Any], changed: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant and figure present in both summaries."""
    rows = []
    for variant in changed["variants"]:
        a, b = base["variants"].get(variant), changed["variants"][variant]
        if a is None:
            continue
        for key, unit, better in (*FIGURES, MEMORY):
            if a.get(key) is None or b.get(key) is None:
                continue
            ia, ib = a.get(f"{key}_interval"), b.get(f"{key}_interval")
            if not ia or not ib or None in ia or None in ib:
                significant = False
            else:
                significant = ia[1] < ib[0] or ib[1] < ia[0]
            ratio = b[key] / a[key] if a[key] else float("nan")
            if not significant:
                verdict = "no measurable difference"
            elif (b[key] < a[key]) == (better == "lower"):
                verdict = "better"
            else:
                verdict = "worse"
            rows.append({"variant": variant, "figure": key, "unit": unit, "base": a[key],
                         "changed": b[key], "ratio": ratio, "verdict": verdict})
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
    return compare(a, b), verdicts(a, b)


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
        lines.append(f"| {r['variant']} | {r['figure']} ({r['unit']}) | {r['base']:.4g} | "
                     f"{r['changed']:.4g} | {r['ratio']:.3f}x | {r['verdict']} |")
    moved = [r for r in rows if r["verdict"] != "no measurable difference"]
    lines += ["", f"{len(moved)} of {len(rows)} figures moved beyond their noise."]
    return "\n".join(lines) + "\n"
