"""The charts of serving one request: latency at equal load beside the generator's floor,
the time spent authenticating, the knee, bytes on the wire, replicas and logout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.charts.style import (
    FLOOR,
    SESSIONS,
    SIDE_NAMES,
    TOKENS,
    WIDTH_IN,
    by_side,
    colour,
    empty,
    nothing,
    plain,
    plt,
    save,
    side,
    style,
)
from analysis.figures import knee_curve
from analysis.load import Run


def dots(ax: plt.Axes, run: Run, names: list[str], values: list[float],
         lows: list[float], highs: list[float]) -> None:
    """One row per variant: its figure and interval, coloured by its side."""
    for y, (name, v, lo, hi) in enumerate(zip(names, values, lows, highs, strict=True)):
        if v is None or np.isnan(v):
            ax.annotate("too few requests", (0, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8, color="#777777")
            continue
        lo = v if lo is None or np.isnan(lo) else lo
        hi = v if hi is None or np.isnan(hi) else hi
        ax.errorbar(v, y, xerr=[[v - lo], [hi - v]], fmt="o", capsize=3,
                    color=colour(run, name))
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)


def latency_vs_rate(run: Run, curve: pd.DataFrame, path: Path) -> Path:
    """p50 and p99 of each variant at the highest common rate, the median over the rounds
    with its interval; the generator's floor (nginx) as a grey band."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 0.9 + 0.38 * max(len(curve), 4)),
                             sharey=True)
    if curve.empty:
        return nothing(fig, axes, "no latency experiment in this run", path)
    cells = curve[curve["target_rps"] == curve["target_rps"].max()]
    floor = cells[cells["variant"] == FLOOR]
    mine = cells[cells["variant"] != FLOOR].set_index("variant")
    names = run.variants.ordered(mine.index)
    for ax, p in zip(axes, ("p50", "p99"), strict=True):
        get = [mine.loc[n].get(k) for n in names for k in (f"{p}_ms",)]
        dots(ax, run, names, [np.nan if v is None else v for v in get],
             [mine.loc[n].get(f"{p}_ms_low") for n in names],
             [mine.loc[n].get(f"{p}_ms_high") for n in names])
        if len(floor) and floor.iloc[0].get(f"{p}_ms") is not None:
            value = float(floor.iloc[0][f"{p}_ms"])
            ax.axvspan(0, value, color="#dddddd", zorder=0,
                       label=f"generator's floor (nginx): {value:.2f} ms")
            # Under the axes, where no variant's dot or whisker can be hidden by it.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
        ax.set_xlim(left=0)
        ax.set_title(f"{p} at {cells['target_rps'].max():,.0f} requests/s (ms)")
        plain(ax, "x")
    return save(fig, path, legend_below=True)


def auth_cost(run: Run, summary: dict[str, Any], path: Path) -> Path:
    """The server's own time authenticating a request (Server-Timing) at the common rate:
    p50 and p99, the median over the rounds with its interval, per variant (log)."""
    figures = summary["variants"]
    names = [v for v in run.variants.ordered(figures) if figures[v].get("auth_us_p50")]
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 0.9 + 0.38 * max(len(names), 4)),
                             sharey=True)
    if not names:
        return nothing(fig, axes, "no latency experiment in this run", path)
    for ax, key in zip(axes, ("auth_us_p50", "auth_us_p99"), strict=True):
        intervals = [figures[n].get(f"{key}_interval") or [None, None] for n in names]
        dots(ax, run, names, [figures[n].get(key) or np.nan for n in names],
             [i[0] for i in intervals], [i[1] for i in intervals])
        ax.set_xscale("log")
        ax.set_title(f"time authenticating, {key.rsplit('_', 1)[1]} (µs, log)")
        plain(ax, "x")
    return save(fig, path)


def knee(run: Run, path: Path) -> Path:
    """Each variant at fractions of its own capacity: p99 against the load as a fraction of
    that capacity, sessions and tokens side by side, the control in both."""
    curve = knee_curve(run)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 4.2), sharey=True)
    if curve.empty:
        return nothing(fig, axes, "no knee in this run", path)
    groups = by_side(run, curve["variant"])
    for ax, name in zip(axes, (SESSIONS, TOKENS), strict=True):
        for variant in groups[name] + groups["control"]:
            rows = curve[curve["variant"] == variant].sort_values("fraction")
            look = style(run, variant)
            ax.plot(rows["fraction"], pd.to_numeric(rows["p99_ms"], errors="coerce"),
                    color=look["color"], marker=look["marker"], linestyle=look["linestyle"],
                    label=variant)
        ax.axhline(20, color="#888888", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_title(SIDE_NAMES[name])
        ax.set_xlabel("load offered, as a fraction of the variant's capacity")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left")
        plain(ax)
    axes[0].set_ylabel("p99 (ms, log; dotted: the 20 ms bound)")
    return save(fig, path)


def bars(run: Run, path: Path, names: list[str], values: list[float], label: str,
         text: str, title: str) -> Path:
    """Horizontal bars, one per variant, coloured by side, each labelled (a zero too)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.35 * max(len(names), 3)))
    if not names:
        empty(ax, "not measured in this run")
        return save(fig, path)
    ax.barh(range(len(names)), values, color=[colour(run, n) for n in names])
    for y, v in enumerate(values):
        ax.annotate(text.format(v), (v, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, max([*values, 1e-9]) * 1.2)
    ax.set_xlabel(label)
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    plain(ax, "x")
    return save(fig, path)


def wire_bytes(run: Run, path: Path) -> Path:
    wire = run.wire
    if wire.empty:
        return bars(run, path, [], [], "", "", "")
    sizes = wire.set_index("variant")["header_bytes"]
    names = [v for v in run.variants.ordered(wire["variant"]) if side(run, v) != "control"]
    return bars(run, path, names, [float(sizes[n]) for n in names],
                "bytes the credential adds to every request", "{:,.0f} B",
                "The credential's request header")


def replicas(run: Run, path: Path) -> Path:
    table = run.table
    rows = table[table["experiment"] == "replicas"] if not table.empty else table
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.2))
    if rows.empty:
        empty(ax, "no replicas experiment in this run")
        return save(fig, path)
    rows = rows.assign(failed=rows["failures"] / rows["requests"].clip(lower=1))
    grouped = rows.groupby(["variant", "routing"])["failed"].median()
    names = run.variants.ordered(rows["variant"])
    for offset, routing, hatch in ((-0.2, "random", ""), (0.2, "sticky", "//")):
        values = [float(grouped.get((n, routing), np.nan)) for n in names]
        drawn = ax.barh(np.arange(len(names)) + offset, values, height=0.38,
                        color=[colour(run, n) for n in names], hatch=hatch,
                        edgecolor="black", label=f"{routing} routing")
        ax.bar_label(drawn, [f"{routing}: {v:.0%}" if not np.isnan(v) else ""
                             for v in values], fontsize=8, padding=3)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 1.1)
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("requests failed")
    ax.set_title("Replicas sharing their keys: each request to a random replica, or sticky")
    ax.legend(loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    return save(fig, path)


def revocation(run: Run, path: Path) -> Path:
    """How long a logged-out credential kept working: the bar to the median refusal, the
    whisker to the latest, a tick where it expired; the axis fits the data."""
    observed = run.revocations
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.5 * max(
        len(set(observed["variant"])) if not observed.empty else 3, 3)))
    if observed.empty:
        empty(ax, "no revocation experiment in this run")
        return save(fig, path)
    names = run.variants.ordered(observed["variant"])
    reach = 0.0
    for i, variant in enumerate(names):
        rows = observed[observed["variant"] == variant]
        refused = rows["refused_after_s"].dropna()
        window = float(rows["window_s"].max())
        if len(refused):
            median, latest = float(refused.median()), float(refused.max())
            ax.barh(i, median, color=colour(run, variant))
            ax.errorbar([median], [i], xerr=[[0], [latest - median]], color="black",
                        capsize=4)
            text = (f"refused after {median * 1000:,.1f} ms" if latest < 1
                    else f"accepted {median:.2f} s, until it expired")
        else:
            median = latest = window
            ax.barh(i, window, color=colour(run, variant), hatch="//", alpha=0.6)
            text = f"still accepted when the {window:g} s window ended"
        ax.annotate(text, (latest, i), va="center", fontsize=8, xytext=(6, 0),
                    textcoords="offset points")
        reach = max(reach, latest)
        if "expires_after_s" in rows and rows["expires_after_s"].notna().any():
            expiry = float(rows["expires_after_s"].median())
            ax.plot([expiry], [i], marker="|", markersize=16, color="black",
                    label="when it would have expired" if i == 0 else None)
            reach = max(reach, expiry)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, reach * 1.6)
    ax.set_xlabel("seconds from logout until the old credential was refused on every replica "
                  "(|: when it would have expired)")
    ax.set_title("Logout: how long does the old credential keep working?")
    ax.grid(True, axis="x", alpha=0.3)
    plain(ax, "x")
    return save(fig, path)

