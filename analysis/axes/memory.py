"""Memory per live user: bytes per live session from a linear fit of server RSS plus Redis
memory against live users. The claim holds when the largest server-side cost per live
session is above 64 bytes and above four times the largest stateless token's per user."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import NO, YES, Evidence, fmt_items, not_measured, row

AXIS = "memory per live user"
# Below this a cost per session is allocator noise, not state.
FLOOR_BYTES = 64.0
TOKEN_FACTOR = 4.0


def judge(e: Evidence) -> dict[str, Any]:
    def costs(group: tuple[str, ...]) -> list[tuple[str, float]]:
        return [(v, e.figures[v]["bytes_per_session"]) for v in group
                if e.figures.get(v, {}).get("bytes_per_session") is not None]

    sessions = costs(e.variants.server_sessions)
    tokens = costs(e.variants.stateless_tokens)
    if not sessions or not tokens:
        return not_measured(AXIS)
    worst_session = max(sessions, key=lambda i: i[1])
    worst_token = max(tokens, key=lambda i: i[1])
    million_mb = worst_session[1] * 1e6 / 2**20
    share = (worst_session[1] * 1e6 / e.memory_bytes) if e.memory_bytes else None
    holds = YES if worst_session[1] > max(FLOOR_BYTES, TOKEN_FACTOR * max(worst_token[1], 0.0)) \
        else NO
    detail = (f"{worst_session[0]} keeps {worst_session[1]:.0f} B per live session "
              f"({million_mb:.0f} MiB per million users"
              + (f", {share:.1%} of this machine's memory" if share is not None else "")
              + f"); {worst_token[0]} {worst_token[1]:.0f} B per user")
    return row(AXIS, holds, fmt_items(sessions, "{:.0f} B"), fmt_items(tokens, "{:.0f} B"),
               detail)
