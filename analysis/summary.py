"""A run's summary.json: each variant's figures (analysis.figures), the duet's ratios
(analysis.duet), the instruction counts (analysis.instructions), the curves the report
draws, and the verdict (analysis.verdict), from the run folder alone."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis import duet, growth, instructions, network
from analysis.axes import auth_time, latency
from analysis.axes.common import Evidence
from analysis.axes.rounds import comparisons
from analysis.figures import (
    connections_curve,
    knee_curve,
    latency_curve,
    left_out,
    storms,
    variant_figures,
)
from analysis.load import LEGACY_VARIANTS, Run
from analysis.verdict import verdict


def nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, np.floating | np.integer):
        return nan_to_none(value.item())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nan_to_none(v) for v in value]
    return value


def declared_pairs(run: Run) -> list[dict[str, str]]:
    """The session-versus-token pairs the run declared before measuring (its manifest's
    `pairs`; runs before manifests recorded them declared the legacy list)."""
    pairs = run.manifest.get("pairs")
    if pairs is None:
        pairs = json.loads(LEGACY_VARIANTS.read_text())["pairs"]
    return [{"session": p["session"], "token": p["token"], "reason": p["reason"]}
            for p in pairs]


def evidence(run: Run) -> tuple[Evidence, pd.DataFrame]:
    """Everything the verdict's axes read, computed once."""
    figures = variant_figures(run)
    counted = instructions.per_variant(instructions.processes(run.path))
    for name, counts in counted.items():
        figures.setdefault(name, {}).update(counts)
    order = [f"{p['a']}__{p['b']}" for p in run.manifest.get("duet", {}).get("pairs", [])]
    windows = duet.windows(run.path)
    ratios = duet.pair_ratios(windows, order)
    partial = Evidence(run, figures, declared_pairs(run), [], ratios,
                       {phase: duet.control(ratios, phase) for phase in (duet.FLAT, duet.RATE)},
                       counted, growth_figures(run), storms(run),
                       run.manifest.get("machine", {}).get("memory_bytes"))
    rounds = comparisons(partial, auth_time.AXIS, "auth_us_p50") + \
        comparisons(partial, latency.AXIS, "latency_ms_p99")
    return Evidence(**{**partial.__dict__, "rounds": rounds}), windows


def growth_figures(run: Run) -> dict[str, Any]:
    """The live-user steps (analysis.growth): each step's ratios, the trends, the margins."""
    windows = growth.windows(run.path)
    steps = growth.steps(windows)
    return {"steps": steps, "trends": growth.trends(windows), "margins": growth.margins(steps)}


def summarize(run: Run) -> dict[str, Any]:
    run.require_data()
    e, windows = evidence(run)
    return nan_to_none({
        "run_id": run.manifest.get("run_id"),
        "status": run.manifest.get("status"),
        "profile": run.manifest.get("profile"),
        "variants": e.figures,
        "latency_curve": latency_curve(run).to_dict(orient="records"),
        "knee_curve": knee_curve(run).to_dict(orient="records"),
        "growth": e.growth,
        "storms": e.storms.to_dict(orient="records"),
        "connections_curve": connections_curve(run).to_dict(orient="records"),
        "common_rates": run.manifest.get("latency", {}).get("common_rates"),
        "capacities": run.manifest.get("latency", {}).get("capacities"),
        "duet": {"ratios": e.duet, "controls": e.controls},
        "network": network.network_table(run).to_dict(orient="records"),
        "forwarder": network.forwarder_cpu(run).to_dict(orient="records"),
        "store_ceiling": network.store_ceiling(run, e.figures, windows),
        "pairs": e.rounds,
        "left_out": left_out(run),
        "verdict": verdict(e),
    })
