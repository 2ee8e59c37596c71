"""Logout: whether the old credential stops working when the user logs out. A credential
refused within half a second on every replica was revoked; one refused only at its expiry
(or not within the window) was not. Stateless tokens stay valid until they expire, and so
does a session kept in the client's cookie: revoking either needs server-side state."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import NO, Evidence, not_measured, row

AXIS = "logout (revocation)"


def words(f: dict[str, Any]) -> str:
    if f["logout_revokes"]:
        return f"refused after {f['logout_refused_after_s_max'] * 1000:.0f} ms"
    accepted = f.get("logout_refused_after_s_p50")
    return (f"accepted {accepted:.1f} s, until it expired" if accepted is not None
            else f"accepted for the whole {f['logout_window_s']:g} s window")


def judge(e: Evidence) -> dict[str, Any]:
    observed = {v: f for v, f in e.figures.items() if f.get("logout_revokes") is not None}
    sessions, tokens = e.variants.server_sessions, e.variants.stateless_tokens
    if not any(v in observed for v in tokens):
        return not_measured(AXIS)
    others = [f"{v}: {words(observed[v])}" for v in observed
              if v not in sessions + tokens]
    holds = NO if any(observed[v]["logout_revokes"] is False for v in tokens if v in observed) \
        else "n/a"
    return row(AXIS, holds,
               "; ".join(f"{v}: {words(observed[v])}" for v in sessions if v in observed),
               "; ".join(f"{v}: {words(observed[v])}" for v in tokens if v in observed),
               "server-side sessions are refused once logged out; stateless tokens keep "
               "working until they expire, and revoking them needs server-side state again"
               + (f" (also measured: {'; '.join(others)})" if others else ""))
