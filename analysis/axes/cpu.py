"""CPU per request at equal load: server plus its own Redis's CPU time per request, token /
session, from the duet (both servers of a pair at the same fixed rate on one core at once;
CPU from /proc/<pid>/schedstat)."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import Evidence
from analysis.axes.duet_pairs import duet_axis
from analysis.duet import RATE

AXIS = "CPU per request (server + Redis CPU time)"


def judge(e: Evidence) -> dict[str, Any]:
    return duet_axis(e, AXIS, RATE, "{:.0f} µs", "lower")
