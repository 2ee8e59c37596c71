"""Capacity per server core: what one core serves flat out, token / session, from the duet
(both servers of a pair flat out on one core at once; each server's requests per CPU-second
of its own process)."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import Evidence
from analysis.axes.duet_pairs import duet_axis
from analysis.duet import FLAT

AXIS = "capacity per server core (flat out)"


def judge(e: Evidence) -> dict[str, Any]:
    return duet_axis(e, AXIS, FLAT, "{:,.0f} req/s per core", "higher")
