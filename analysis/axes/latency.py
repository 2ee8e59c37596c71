"""Latency at equal load: the client's p99 at the common rate, token / session, round by
round (randomized interleaved slices, never a duet: a co-running server would add its
queue to yours)."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import Evidence, library_of, pair_axis

AXIS = "latency at equal load (p99)"


def judge(e: Evidence) -> dict[str, Any]:
    return pair_axis(AXIS, [r for r in e.rounds if r["axis"] == AXIS], "{:.2f} ms", "lower",
                     library_of=library_of(e))
