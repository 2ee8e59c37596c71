"""report.md and report.html from a run's summary: the short answer first, then one section
per axis of the verdict, the answer for a deployment, then the appendices. One list of
blocks (analysis.report.blocks), rendered twice."""

from __future__ import annotations

import string
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import answer, plan
from analysis.load import Run
from analysis.report.appendix import (
    calibration_blocks,
    capacity_blocks,
    failures_blocks,
    microseconds_blocks,
    rates_origin,
    run_blocks,
    threats,
)
from analysis.report.blocks import Block, fmt, render_html, render_markdown, table_block
from analysis.report.deployment import deployment_blocks
from analysis.report.sections import (
    duet_section,
    logout_section,
    memory_section,
    rounds_section,
    scaling_section,
    verdict_line,
    wire_section,
)
from analysis.report.users import growth_section, pauses_section

__all__ = ["build_blocks", "render_html", "render_markdown"]


def answer_blocks(summary: dict[str, Any]) -> list[Block]:
    """The short answer under the claim, and one row per axis."""
    return [Block("h2", "The answer"),
            Block("list", answer.short_answer(summary)),
            table_block(("axis", "measured", "does the claim hold?"), answer.axis_table(summary),
                        "Each axis's figures, interval and full verdict are in its "
                        "section below; the words: `yes` the token side better beyond the ±10% "
                        "margin in every declared pair, `no` worse in every pair, `no "
                        "measurable difference` every interval inside the margin, `by an "
                        "amount not settled` every interval on one side of 1.0 but some "
                        "crossing the margin, `depends on the pair` or `on the library` "
                        "where pairs or token libraries disagree, `undetermined` where the "
                        "run cannot say (why is given), `inconclusive` otherwise.")]


def build_blocks(run: Run, summary: dict[str, Any], charts: dict[str, Path],
                 primitives: pd.DataFrame, users: float, rps: float, rtt_ms: float,
                 requests_per_day: float, prices: plan.Prices,
                 planned: list[dict[str, Any]]) -> list[Block]:
    manifest = run.manifest
    variants = run.variants.ordered(summary["variants"])
    verdict = summary["verdict"]
    margin = verdict.get("equivalence_margin", 0.1)
    blocks = [Block("h1", f"authscale report: run {manifest.get('run_id')}"),
              Block("quote", "“" + verdict["claim"] + "”"),
              *answer_blocks(summary),
              Block("p", "The declared comparisons, written down before measuring (never "
                         "the best of each side picked afterwards): "
                    + "; ".join(f"**{p['session']} against {p['token']}**: {p['reason']}"
                                for p in verdict.get("pairs", [])) + ".")]
    blocks += memory_section(summary, charts, variants)
    judged = partial(verdict_line, summary)
    blocks += growth_section(summary, charts, judged)
    blocks += pauses_section(summary, charts, run.population,
                             manifest.get("settings", {}).get("population", {}), judged)
    blocks += duet_section(summary, charts, margin)
    blocks += rounds_section(summary, charts, margin, rates_origin(manifest, summary))
    blocks += wire_section(summary, charts, variants, requests_per_day)
    blocks += scaling_section(summary, charts, variants)
    blocks += logout_section(summary, charts, variants,
                             manifest.get("settings", {}).get("revocation", {}))
    blocks += deployment_blocks(summary, charts, planned, users, rps, rtt_ms, prices)
    blocks += microseconds_blocks(run, summary, charts, variants, primitives)
    blocks += capacity_blocks(variants, summary["variants"], summary, charts)
    churn = [[v, fmt(summary["variants"][v].get("churn_rps"), "{:,.0f}"),
              fmt(summary["variants"][v].get("churn_error_rate"), "{:.2%}")]
             for v in variants if summary["variants"][v].get("churn_rps") is not None]
    if churn:
        settings = manifest.get("settings", {}).get("churn", {})
        blocks += [Block("h2", "Appendix. Login churn"),
                   table_block(("variant", "requests/s served", "errors"), churn,
                               "Locust users logging in, making a few requests and logging "
                               f"out, at {settings.get('rate', '?')} requests/s, sessions "
                               f"and tokens living {settings.get('session_ttl', '?')} s: "
                               "the write path, with expiry at work. Behaviour, not "
                               "latency (Locust's users wait for their answers).")]
    calibration = calibration_blocks(run.path / "calibration.json")
    if calibration:
        blocks += [Block("h2", "Appendix. The calibration and its targets"), *calibration]
    blocks += failures_blocks(run, summary)
    blocks += [Block("h2", "Appendix. Threats to validity"), Block("list", threats(manifest))]
    blocks += run_blocks(run, summary)
    return numbered(blocks)


def numbered(blocks: list[Block]) -> list[Block]:
    """The sections numbered 1, 2, ... and the appendices lettered A, B, ... in the order
    they appear: which of them a run has depends on what it measured."""
    marks = {"Section. ": (str(n) for n in range(1, 100)),
             "Appendix. ": (f"Appendix {c}" for c in string.ascii_uppercase)}
    found = []
    for b in blocks:
        prefix = next((p for p in marks if b.kind == "h2" and b.content.startswith(p)), None)
        found.append(b if prefix is None else Block(
            b.kind, f"{next(marks[prefix])}. {b.content.removeprefix(prefix)}", b.caption))
    return found
