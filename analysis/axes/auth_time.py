"""Time spent authenticating: the server's own Server-Timing p50 at the common rate, token /
session, round by round. Time, not CPU: while a Redis call awaits, other requests run."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import Evidence, library_of, pair_axis

AXIS = "time spent authenticating (Server-Timing p50)"


def judge(e: Evidence) -> dict[str, Any]:
    return pair_axis(AXIS, [r for r in e.rounds if r["axis"] == AXIS], "{:.1f} µs", "lower",
                     library_of=library_of(e))
