"""The report's charts (matplotlib), one function each, in one look (analysis.charts.style):
a colour family per side of the claim, small multiples where variants would crowd."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.charts.duet import duet_ratios
from analysis.charts.serving import (
    auth_cost,
    knee,
    latency_vs_rate,
    replicas,
    revocation,
    wire_bytes,
)
from analysis.charts.users import growth, memory_vs_sessions, pauses
from analysis.load import Run

# The memory table's extrapolations, in live users.
EXTRAPOLATE_TO = (1e6, 1e7, 1e8)


def all_charts(run: Run, curve: pd.DataFrame, out: Path, summary: dict[str, Any]
               ) -> dict[str, Path]:
    return {
        "duet": duet_ratios(run, summary["duet"]["ratios"], summary["variants"],
                            summary["verdict"]["equivalence_margin"], out / "duet.png"),
        "memory": memory_vs_sessions(run, out / "memory_vs_sessions.png"),
        "growth": growth(run, summary["growth"].get("steps", []),
                         summary["growth"].get("margins", {}), out / "live_users.png"),
        "pauses": pauses(run, summary.get("storms") or [], out / "pauses.png"),
        "latency": latency_vs_rate(run, curve, out / "latency_vs_rate.png"),
        "auth": auth_cost(run, summary, out / "auth_cost.png"),
        "knee": knee(run, out / "knee.png"),
        "wire": wire_bytes(run, out / "wire_bytes.png"),
        "replicas": replicas(run, out / "replicas.png"),
        "revocation": revocation(run, out / "revocation.png"),
    }
