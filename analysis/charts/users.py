"""The charts of the claim's own words, many users at once: memory per live user above each
server's baseline, service as live users grow, and the collector's pauses in login storms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.charts.style import (
    CONTROL,
    SESSIONS,
    SIDE_NAMES,
    TOKENS,
    WIDTH_IN,
    by_side,
    colour,
    legend_below,
    nothing,
    plain,
    plt,
    save,
    side,
    style,
)
from analysis.figures import memory_fits
from analysis.load import Run


def memory_vs_sessions(run: Run, path: Path) -> Path:
    """Memory above each variant's own first step (its baseline) against live users, on
    linear axes, sessions and tokens side by side; the fitted line and its slope."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 4.2), sharey=True)
    population = run.population
    if population.empty:
        return nothing(fig, axes, "no population experiment in this run", path)
    fits = memory_fits(run)
    groups = by_side(run, population["variant"])
    for ax, name in zip(axes, (SESSIONS, TOKENS), strict=True):
        for variant in groups[name] + ([] if name == SESSIONS else groups["control"]):
            rows = population[population["variant"] == variant].sort_values("size")
            memory = rows["server_rss_bytes"] + rows["redis_used_memory_bytes"].fillna(0) \
                if "redis_used_memory_bytes" in rows else rows["server_rss_bytes"]
            x = rows["live_sessions"] if rows["live_sessions"].max() > 0 else rows["size"]
            base = float(memory.iloc[0])
            fit = fits.get(variant, {}).get("total")
            look = style(run, variant)
            unit = "revoked token" if run.variants.facts.get(variant, {}).get(
                "denylist") == "redis" else "user"
            label = f"{variant}: {fit.slope:,.0f} B per {unit}" if fit else variant
            ax.plot(x / 1e6, (memory - base) / 2**20, look["marker"], color=look["color"],
                    label=label)
            if fit is not None:
                span = np.array([float(x.min()), float(x.max())])
                ax.plot(span / 1e6, (fit.predict(span) - fit.predict(float(x.min()))) / 2**20,
                        linestyle=look["linestyle"], color=look["color"], alpha=0.7)
        ax.set_title(SIDE_NAMES[name])
        ax.set_xlabel("live users (millions)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
        plain(ax)
    axes[0].set_ylabel("memory above its first step (MiB)")
    return save(fig, path)


def growth(run: Run, steps: list[dict[str, Any]], margins: dict[str, dict[str, Any]],
           path: Path) -> Path:
    """Each variant's grown server against itself at the fewest live users, on one core at
    once: capacity per core and p99, the ratio at each step with its 95% interval, one
    panel per figure, a colour family per side; the band is the run's margin (its widest
    A/A interval), the first step the A/A itself."""
    frame = pd.DataFrame(steps)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 4.4), sharex=True)
    if frame.empty:
        return nothing(fig, axes, "no live-user steps in this run", path)
    variants = run.variants.ordered(frame["variant"])
    # Side by side at each step, not on top of each other: a small offset per variant.
    shift = {v: 1.06 ** (i - (len(variants) - 1) / 2) for i, v in enumerate(variants)}
    for ax, figure in zip(axes, ("capacity", "p99"), strict=True):
        margin = (margins.get(figure) or {}).get("margin", 0.1)
        ax.axhspan(max(1 - margin, 1e-3), 1 + margin, color="#eeeeee", zorder=0,
                   label="the run's margin")
        ax.axhline(1.0, color="#888888", lw=0.8, zorder=1)
        shown = frame[(frame["figure"] == figure) & (frame["n"] >= 2)]
        bounds = pd.concat([shown["ratio_low"], shown["ratio_high"]]).dropna()
        bounds = bounds[bounds > 0]
        # The axis fitted to the intervals (and the margin, where the intervals are narrower).
        low = min(bounds.min(), 1 - margin) if len(bounds) else 0.5
        high = max(bounds.max(), 1 + margin) if len(bounds) else 1.5
        pad = 0.05 * (high - low)
        ax.set_ylim(max(low - pad, 0.0), high + pad)
        for variant in variants:
            mine = frame[(frame["variant"] == variant) & (frame["figure"] == figure)
                         & (frame["n"] >= 2)].sort_values("population")
            if mine.empty:
                continue
            look = style(run, variant)
            x = mine["population"] * shift[variant]
            ax.errorbar(x, mine["ratio"], yerr=[mine["ratio"] - mine["ratio_low"],
                                                mine["ratio_high"] - mine["ratio"]],
                        marker=look["marker"], linestyle=look["linestyle"],
                        color=look["color"], capsize=3, label=variant)
        ax.set_xscale("log")
        ax.set_xlabel("live users on the grown server (log); its companion holds the fewest")
        ax.set_title({"capacity": "capacity per core, N users / fewest (higher is better)",
                      "p99": "p99 at the rate, N users / fewest (lower is better)"}[figure])
        ax.grid(True, alpha=0.3)
        plain(ax)
    legend_below(fig, axes)
    return save(fig, path, legend_below=True)


def pauses(run: Run, storms: list[dict[str, Any]], path: Path) -> Path:
    """The login storms: each arm's longest full collection and its reads' longest wait
    (ms), a bar each, grouped by the storm's size; the remedy hatched, the control grey."""
    frame = pd.DataFrame(storms)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 1.2 + 0.42 * max(len(frame), 3)),
                             sharey=True)
    if frame.empty:
        return nothing(fig, axes, "no login storm in this run", path)
    labels = [f"{r['variant']}{' + ' + r['remedy'] if r['remedy'] else ''}"
              f"{' (control)' if side(run, r['variant']) == CONTROL else ''} at "
              f"{r['population']:,}" for r in frame.to_dict("records")]
    y = np.arange(len(frame))
    colours = [colour(run, v) for v in frame["variant"]]
    for ax, column, title in zip(axes, ("gc_full_longest_ms", "max_ms"), (
            "longest full collection in the storm (ms)", "the reads' longest wait (ms)"),
            strict=True):
        values = frame[column].fillna(0).to_numpy(dtype=float)
        bars = ax.barh(y, values, color=colours, edgecolor="#333333", linewidth=0.5)
        for bar, remedy in zip(bars, frame["remedy"], strict=True):
            if remedy:
                bar.set_hatch("//")
                bar.set_facecolor("white")
        for yy, value in zip(y, values, strict=True):
            shown = f"{value:,.0f}" if value or column != "gc_full_longest_ms" else "none met"
            ax.annotate(shown, (value, yy), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
        ax.set_title(title)
        ax.set_xlim(0, max(values.max(), 1.0) * 1.15)
        ax.grid(axis="x", alpha=0.3)
        plain(ax, "x")
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    return save(fig, path)
