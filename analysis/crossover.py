"""The crossover map: over live users (10^3 to 10^9) and requests per second (10 to 10^6),
which design of a pair costs less a month (the planner's model, analysis.plan), where a
design meets a limit (one Redis core saturated, a collector pause over 100 ms, a server's
memory full), and which part of the map the run measured rather than extrapolated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from analysis import plan

USERS = np.logspace(3, 9, 49)
RATES = np.logspace(1, 6, 41)
# A cost within this share of the other design's counts as no real difference.
SAME_COST = 0.10
PAUSE_LIMIT_MS = 100.0
SESSIONS, TIE, TOKENS = 0, 1, 2
COLOURS = ListedColormap(["#4f81bd", "#e6e6e6", "#c0504d"])


def cheaper(e: plan.Evidence, session: str, token: str, prices: plan.Prices,
            rtt_ms: float) -> np.ndarray:
    """Per (rate, users): SESSIONS, TIE or TOKENS, by the two designs' monthly totals."""
    grid = np.full((len(RATES), len(USERS)), np.nan)
    a, b = plan.prepare(e, session), plan.prepare(e, token)
    for i, rps in enumerate(RATES):
        for j, users in enumerate(USERS):
            x = plan.size(a, e, users, rps, rtt_ms, prices)["total_usd"]
            y = plan.size(b, e, users, rps, rtt_ms, prices)["total_usd"]
            if x is None or y is None:
                continue
            grid[i, j] = TIE if abs(x - y) <= SAME_COST * max(x, y) else \
                (SESSIONS if x < y else TOKENS)
    return grid


def limits(e: plan.Evidence, session: str, memory_bytes: float) -> dict[str, Any]:
    """Where the session design meets a limit: the rate one Redis core serves, the users at
    which a collector pause passes 100 ms, and (for sessions in the process) the users the
    servers a rate needs hold in `memory_bytes` each."""
    d = plan.prepare(e, session)
    found: dict[str, Any] = {}
    if d.lookups_per_redis_core:
        found["redis_core"] = d.lookups_per_redis_core
    pause_users = plan.users_at_pause(d, PAUSE_LIMIT_MS)
    if pause_users:
        found["pause_users"] = pause_users
    if d.in_process and d.server_bytes_per_user and d.capacity_per_server and memory_bytes:
        # Beyond this line the servers' count is set by their memory, not their cores.
        room = memory_bytes - d.baseline_rss_bytes
        found["memory_users"] = [
            room / d.server_bytes_per_user * max(1, math.ceil(r / d.capacity_per_server))
            for r in RATES]
    return found


def draw(e: plan.Evidence, pairs: list[tuple[str, str]], prices: plan.Prices, rtt_ms: float,
         path: Path) -> Path:
    """One panel per pair: the cheaper design at each point, its limits, and the measured
    corner (up to the largest live-user step and one server's capacity) outlined."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.2 * len(pairs), 5.2), squeeze=False)
    for ax, (session, token) in zip(axes[0], pairs, strict=True):
        grid = cheaper(e, session, token, prices, rtt_ms)
        ax.pcolormesh(USERS, RATES, grid, cmap=COLOURS, vmin=0, vmax=2, shading="nearest")
        ax.set_xscale("log")
        ax.set_yscale("log")
        found = limits(e, session, prices.server_gib * 2**30)
        if "redis_core" in found:
            ax.axhline(found["redis_core"], color="black", ls="--", lw=1)
            ax.annotate("one Redis core saturated", (USERS[0], found["redis_core"]),
                        xytext=(4, 4), textcoords="offset points", fontsize=8)
        if "pause_users" in found:
            ax.axvline(found["pause_users"], color="black", ls=":", lw=1.2)
            ax.annotate("collector pause > 100 ms", (found["pause_users"], RATES[1]),
                        xytext=(4, 0), textcoords="offset points", fontsize=8, rotation=90)
        if "memory_users" in found:
            ax.plot(found["memory_users"], RATES, color="black", lw=1)
            ax.annotate("a server's memory full", (found["memory_users"][-8], RATES[-8]),
                        xytext=(-4, 0), textcoords="offset points", fontsize=8, ha="right")
        per_server, _ = plan.capacity(e, token)
        measured_rps = min(filter(None, [per_server, plan.capacity(e, session)[0]]),
                           default=None)
        if e.measured_users and measured_rps:
            ax.add_patch(plt.Rectangle((USERS[0], RATES[0]), e.measured_users - USERS[0],
                                       measured_rps - RATES[0], fill=False, lw=2,
                                       edgecolor="#333333"))
            ax.annotate("measured", (USERS[0], measured_rps), xytext=(4, -12),
                        textcoords="offset points", fontsize=8, fontweight="bold")
        ax.set_xlim(USERS[0], USERS[-1])
        ax.set_ylim(RATES[0], RATES[-1])
        ax.set_xlabel("live users")
        ax.set_ylabel("requests per second")
        ax.set_title(f"{session} against {token}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS(i)) for i in (SESSIONS, TIE, TOKENS)]
    fig.legend(handles, ["the session design costs less", f"within {SAME_COST:.0%}",
                         "the token design costs less"], loc="lower center", ncol=3,
               frameon=False, fontsize=9)
    fig.suptitle(f"Which costs less a month (servers, memory and Redis; {rtt_ms:g} ms to "
                 "Redis); outside the outlined corner, extrapolated", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
