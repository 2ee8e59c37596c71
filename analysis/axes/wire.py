"""Bytes on the wire: the request header that carries each credential, token / session in
each declared pair. The claim holds where the token's header is no larger than the session
cookie's in every pair."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import DEPENDS, NO, YES, Evidence, not_measured, row

AXIS = "bytes on the wire per request"


def judge(e: Evidence) -> dict[str, Any]:
    def size(v: str) -> int | None:
        return e.figures.get(v, {}).get("header_bytes")

    pairs = [(p["session"], p["token"]) for p in e.pairs
             if size(p["session"]) is not None and size(p["token"]) is not None]
    if not pairs:
        return not_measured(AXIS)
    ratios = [(s, t, size(t) / size(s)) for s, t in pairs]  # type: ignore[operator]
    if all(r <= 1 for *_, r in ratios):
        holds = YES
    elif all(r > 1 for *_, r in ratios):
        holds = NO
    else:
        holds = DEPENDS
    sessions = dict.fromkeys(s for s, _ in pairs)
    tokens = dict.fromkeys(t for _, t in pairs)
    return row(AXIS, holds, ", ".join(f"{v}: {size(v)} B" for v in sessions),
               ", ".join(f"{v}: {size(v)} B" for v in tokens),
               "; ".join(f"{t} / {s}: {r:.1f}x the bytes on every request"
                         for s, t, r in ratios))
