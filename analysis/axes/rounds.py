"""The rule of the axes read at the common rate (time spent authenticating, latency): each
declared pair's ratio token / session round by round (the variants ran in randomized
interleaved slices, each round every variant once), its order-statistic interval with its
real coverage, read against the margin. Generator-bound cells are left out: a comparison at
unequal load is no comparison."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import EQUIVALENCE_MARGIN, TOO_FEW, Evidence
from analysis.figures import generator_bound, headline
from analysis.stats import difference, median_interval, min_count_for

# Per-round figures compared in each pair (lower is better for both): summary key, the
# table's column, its scale to the key's unit, the percentile its cells need enough
# requests for.
FIGURES = {
    "auth_us_p50": ("auth_us_p50", 1.0, 50.0),
    "latency_ms_p99": ("latency_us_p99", 1e-3, 99.0),
}


def per_round(cells: Any, variant: str, column: str, percentile: float) -> dict[int, float]:
    """A variant's figure at the headline rate, round by round (cells with too few
    requests for the percentile left out)."""
    mine = cells[(cells["variant"] == variant)
                 & (cells["measured_requests"] >= min_count_for(percentile))]
    return {int(r): float(v) for r, v in zip(mine["repetition"], mine[column], strict=True)}


def comparisons(e: Evidence, axis: str, key: str) -> list[dict[str, Any]]:
    column, scale, percentile = FIGURES[key]
    everything = headline(e.run.table)
    if everything.empty:
        return []
    cells = everything[~generator_bound(everything)]
    rows = []
    for pair in e.pairs:
        session, token = pair["session"], pair["token"]
        base = {"session": session, "token": token, "reason": pair["reason"], "axis": axis,
                "figure": key, "better": "lower"}
        if not {session, token} <= set(everything["variant"]):
            continue
        if not {session, token} <= set(cells["variant"]):
            rows.append({**base, "verdict": TOO_FEW,
                         "detail": "every cell generator-bound: the generator, not the "
                                   "server, set the load"})
            continue
        a = per_round(cells, session, column, percentile)
        b = per_round(cells, token, column, percentile)
        if not a or not b:
            rows.append({**base, "verdict": TOO_FEW,
                         "detail": f"fewer than {min_count_for(percentile):,} requests per "
                                   f"cell for it"})
            continue
        d = difference(a, b, EQUIVALENCE_MARGIN)
        rows.append({**base, "session_median": median_interval(list(a.values())).median * scale,
                     "token_median": median_interval(list(b.values())).median * scale,
                     **d.as_dict()})
    return rows
