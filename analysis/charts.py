"""The report's charts (matplotlib): one function per chart, the same colour per variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.load import Measurement, Run, merged
from analysis.stats import min_count_for
from analysis.summary import COMMON, knee_curve, memory_fits

_PALETTE = plt.get_cmap("tab10").colors
EXTRAPOLATE_TO = (1e6, 1e7, 1e8)


def colour(run: Run, variant: str) -> Any:
    """One colour per variant, by its place in the run's variant order, in every chart."""
    index = run.variants.index(variant)
    return _PALETTE[index % len(_PALETTE)] if index is not None else "grey"


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _empty(ax: plt.Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plain(ax: plt.Axes, axis: str = "both") -> None:
    """Tick labels as plain numbers with thousands separators: no 1e6 offsets, no 10^x.
    A log axis gets ticks at 1, 2 and 5 of every decade, so a narrow range still has some."""
    formatter = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.10g}")
    for name, one in (("x", ax.xaxis), ("y", ax.yaxis)):
        if axis not in (name, "both"):
            continue
        if one.get_scale() == "log":
            low, high = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
            decades = np.log10(high / low) if low > 0 else 9.0
            subs = (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
            one.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
        one.set_major_formatter(formatter)
        one.set_minor_formatter(matplotlib.ticker.NullFormatter())


def memory_vs_sessions(run: Run, path: Path) -> Path:
    fig, (linear, loglog) = plt.subplots(1, 2, figsize=(13, 5))
    population = run.population
    if population.empty:
        _empty(linear, "no population experiment in this run")
        loglog.set_axis_off()
        return _save(fig, path)
    fits = memory_fits(run)
    for variant in run.variants.ordered(population["variant"]):
        rows = population[population["variant"] == variant].sort_values("size")
        memory = rows["server_rss_bytes"] + rows["redis_used_memory_bytes"].fillna(0) \
            if "redis_used_memory_bytes" in rows else rows["server_rss_bytes"]
        x = rows["live_sessions"] if rows["live_sessions"].max() > 0 else rows["size"]
        fit = fits.get(variant, {}).get("total")
        label = f"{variant}: {fit.slope:,.0f} B per user" if fit else variant
        linear.plot(x, memory / 2**20, "o", color=colour(run, variant), label=label)
        if fit is not None:
            span = np.array([0.0, float(x.max())])
            linear.plot(span, fit.predict(span) / 2**20, "-", color=colour(run, variant),
                        alpha=0.6)
        loglog.plot(x.clip(lower=1), memory / 2**20, "o-", color=colour(run, variant))
    linear.set_xlabel("live users (sessions; denylisted ids for jwt-hs256-revocable)")
    linear.set_ylabel("server RSS + Redis used_memory (MiB)")
    linear.set_title("Server-side memory against live users")
    linear.set_xlim(left=0)
    linear.set_ylim(bottom=0)
    loglog.set_xscale("log")
    loglog.set_yscale("log")
    loglog.set_xlabel("live users (log)")
    loglog.set_ylabel("MiB (log)")
    loglog.set_title("The same, log-log: the small sizes visible")
    for ax in (linear, loglog):
        plain(ax)
        ax.grid(True, which="major", alpha=0.3)
    linear.legend(fontsize=8)
    return _save(fig, path)


def headline_measurements(run: Run) -> list[Measurement]:
    """The latency experiment's completed common-rate cells at its highest common rate."""
    common = [m for m in run.measurements("latency") if m.record.ok
              and m.record.info.get("phase", COMMON) == COMMON]
    if not common:
        return []
    rate = max(m.record.target_rps for m in common)
    return [m for m in common if m.record.target_rps == rate]


def _with_nan(rows: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)


def latency_vs_rate(run: Run, curve: pd.DataFrame, path: Path) -> Path:
    """p50 and p99 (and p99.9 where the cells hold enough requests) by variant: against the
    rate when there are several, side by side at the one rate otherwise."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    if curve.empty:
        _empty(axes[0], "no latency experiment in this run")
        for ax in axes[1:]:
            ax.set_axis_off()
        return _save(fig, path)
    rates = sorted(curve["target_rps"].unique())
    variants = run.variants.ordered(curve["variant"])
    for ax, p in zip(axes, ("p50", "p99", "p99.9"), strict=True):
        for i, variant in enumerate(variants):
            rows = curve[curve["variant"] == variant].sort_values("target_rps")
            y = _with_nan(rows, f"{p}_ms")
            yerr = np.abs(np.vstack([y - _with_nan(rows, f"{p}_ms_low"),
                                     _with_nan(rows, f"{p}_ms_high") - y]))
            x = rows["target_rps"].to_numpy() if len(rates) > 1 else np.full(len(rows), i)
            ax.errorbar(x, y, yerr=yerr, marker="o", capsize=4, color=colour(run, variant),
                        label=variant, linestyle="-" if len(rates) > 1 else "none")
        if len(rates) > 1:
            ax.set_xlabel("target rate (requests/s)")
            plain(ax, "x")
        else:
            ax.set_xticks(range(len(variants)), variants, rotation=35, ha="right", fontsize=8)
            ax.set_xlabel(f"at {rates[0]:,.0f} requests/s")
        ax.set_title(f"{p} latency (ms)")
        if curve[f"{p}_ms"].isna().all():
            need = min_count_for(float(p[1:]))
            ax.text(0.5, 0.5, f"not shown: fewer than {need:,}\nrequests per cell",
                    ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ax.set_ylim(bottom=0)
        plain(ax, "y")
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    return _save(fig, path)


def auth_cost(run: Run, path: Path) -> Path:
    """The server's auth time per request: percentile curves from the merged histograms."""
    fig, ax = plt.subplots(figsize=(8, 5))
    measurements = headline_measurements(run)
    if not measurements:
        _empty(ax, "no latency experiment in this run")
        return _save(fig, path)
    rate = measurements[0].record.target_rps
    percentiles = np.array([1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9])
    for variant in run.variants.ordered({m.record.variant for m in measurements}):
        histogram = merged([m.histogram("auth") for m in measurements
                            if m.record.variant == variant])
        if histogram is None:
            continue
        values = [histogram.get_value_at_percentile(p) for p in percentiles]
        ax.plot(range(len(percentiles)), values, "o-", color=colour(run, variant), label=variant)
    ax.set_xticks(range(len(percentiles)), [f"p{p:g}" for p in percentiles])
    ax.set_yscale("log")
    plain(ax, "y")
    ax.set_ylabel("time authenticating per request (µs, log)")
    ax.set_title(f"Server-side authentication time (Server-Timing, {rate:,.0f} req/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def knee(run: Run, path: Path) -> Path:
    """Each variant at fractions of its own capacity: p50 and p99 against the offered rate
    (log scale: past the knee they grow a hundredfold), and what it served against what it
    was offered, where the plateau is its capacity."""
    curve = knee_curve(run)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    if curve.empty:
        _empty(axes[0], "no knee in this run (the latency experiment's third phase)")
        for ax in axes[1:]:
            ax.set_axis_off()
        return _save(fig, path)
    for variant in run.variants.ordered(curve["variant"]):
        rows = curve[curve["variant"] == variant].sort_values("target_rps")
        c = colour(run, variant)
        for ax, p in zip(axes[:2], ("p50", "p99"), strict=True):
            ax.plot(rows["target_rps"], _with_nan(rows, f"{p}_ms"), "o-", color=c,
                    label=variant)
        axes[2].plot(rows["target_rps"], rows["achieved_rps"], "o-", color=c, label=variant)
    for ax, p in zip(axes[:2], ("p50", "p99"), strict=True):
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(f"{p} latency (ms, log) against the rate offered")
        ax.set_xlabel("offered rate (requests/s, log)")
        ax.grid(True, which="both", alpha=0.3)
        plain(ax)
    top = float(curve["target_rps"].max()) * 1.05
    axes[2].plot([0, top], [0, top], "--", color="grey", label="served = offered")
    axes[2].set_xlabel("offered rate (requests/s)")
    axes[2].set_ylabel("served in the measured window (requests/s)")
    axes[2].set_title("Served against offered: the plateau is the capacity")
    axes[2].grid(True, alpha=0.3)
    plain(axes[2])
    for axis in (axes[2].xaxis, axes[2].yaxis):
        axis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
    axes[2].legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def wire_bytes(run: Run, path: Path, requests_per_day: float) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    wire = run.wire
    if wire.empty:
        _empty(ax, "no wire figures in this run")
        return _save(fig, path)
    variants = run.variants.ordered(wire["variant"])
    values = [int(wire.set_index("variant").loc[v, "header_bytes"]) for v in variants]
    bars = ax.bar(variants, values, color=[colour(run, v) for v in variants])
    for bar, value in zip(bars, values, strict=True):
        per_day = value * requests_per_day / 1e9
        ax.annotate(f"{value} B\n{per_day:,.1f} GB/day", (bar.get_x() + bar.get_width() / 2,
                    value), ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, max([*values, 1]) * 1.2)  # room for the labels above the bars
    ax.set_ylabel("bytes the credential adds to each request")
    ax.set_title(f"Credential bytes per request (per day at {requests_per_day:,.0f} requests)")
    plain(ax, "y")
    ax.tick_params(axis="x", rotation=30)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def replicas(run: Run, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    table = run.table
    rows = table[table["experiment"] == "replicas"] if not table.empty else table
    if rows.empty:
        _empty(left, "no replicas experiment in this run")
        right.set_axis_off()
        return _save(fig, path)
    rows = rows.assign(failure_rate=rows["failures"] / rows["requests"].clip(lower=1),
                       p99_ms=rows["latency_us_p99"] / 1000)
    grouped = rows.groupby(["variant", "routing"])[["failure_rate", "p99_ms"]].median()
    variants = run.variants.ordered(rows["variant"])
    x = np.arange(len(variants))
    for offset, routing, hatch in ((-0.2, "random", ""), (0.2, "sticky", "//")):
        for ax, column in ((left, "failure_rate"), (right, "p99_ms")):
            values = [grouped[column].get((v, routing), np.nan) for v in variants]
            bars = ax.bar(x + offset, values, width=0.4,
                          color=[colour(run, v) for v in variants], hatch=hatch,
                          edgecolor="black", label=routing)
            # Every bar labelled, a zero too: a bar of height 0 must not look missing.
            text = "{:.0%}" if column == "failure_rate" else "{:.1f}"
            ax.bar_label(bars, [text.format(v) if not np.isnan(v) else "" for v in values],
                         fontsize=7, padding=2)
    left.set_ylabel("share of requests failed")
    left.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    plain(right, "y")
    left.set_title("Replicas: failures, random vs sticky (hatched) routing")
    right.set_ylabel("p99 latency (ms)")
    right.set_title("Replicas: p99 latency")
    for ax in (left, right):
        ax.set_xticks(x, variants, rotation=30, ha="right")
        ax.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize=8)
    return _save(fig, path)


def revocation(run: Run, path: Path) -> Path:
    """How long a logged-out credential kept working, on a linear axis in seconds: the bar
    to the median refusal, the whisker to the latest, a tick where the token expired."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    observed = run.revocations
    if observed.empty:
        _empty(ax, "no revocation experiment in this run")
        return _save(fig, path)
    variants = run.variants.ordered(observed["variant"])
    window = float(observed["window_s"].max())
    for i, variant in enumerate(variants):
        rows = observed[observed["variant"] == variant]
        refused = rows["refused_after_s"].dropna()
        if len(refused):
            median, latest = float(refused.median()), float(refused.max())
            ax.barh(i, median, color=colour(run, variant))
            ax.errorbar([median], [i], xerr=[[0], [latest - median]], color="black",
                        capsize=4)
            text = (f"refused after {median * 1000:,.1f} ms (latest {latest * 1000:,.1f} ms)"
                    if latest < 1 else f"accepted {median:.2f} s (latest {latest:.2f} s)")
        else:
            ax.barh(i, window, color=colour(run, variant), hatch="//", alpha=0.6)
            latest, text = window, f"still accepted when the {window:g} s window ended"
        if "expires_after_s" in rows and rows["expires_after_s"].notna().any():
            expiry = float(rows["expires_after_s"].median())
            ax.plot([expiry], [i], marker="|", markersize=18, color="black")
            text += f"; expired at {expiry:.2f} s"
        ax.annotate(text, (latest, i), va="center", fontsize=8, xytext=(6, 0),
                    textcoords="offset points")
    ax.set_yticks(range(len(variants)), variants)
    ax.set_xlim(0, window * 1.9)
    plain(ax, "x")
    ax.set_xlabel("seconds from logout until the old credential was refused, on every replica")
    ax.set_title("Logout: how long does the old credential keep working?")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


def over_time(run: Run, path: Path) -> Path:
    """Server RSS of every headline cell, and each variant's p50 and p99 second by second
    (the median over its repetitions of each second's figure)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    headline = headline_measurements(run)
    if not headline:
        _empty(top, "no latency experiment in this run")
        bottom.set_axis_off()
        return _save(fig, path)
    rate = headline[0].record.target_rps
    for variant in run.variants.ordered({m.record.variant for m in headline}):
        mine = [m for m in headline if m.record.variant == variant]
        c = colour(run, variant)
        for i, m in enumerate(mine):
            first = m.samples[m.samples["replica"] == 0] if not m.samples.empty else None
            if first is not None:
                top.plot(first["timestamp"] - m.window[0], first["server_rss_bytes"] / 2**20,
                         color=c, alpha=0.6, label=variant if i == 0 else None)
        seconds = pd.concat([m.timeline for m in mine], ignore_index=True)
        if seconds.empty:
            continue
        per_second = seconds.groupby("second")[["p50_us", "p99_us"]].median() / 1000
        bottom.plot(per_second.index + 0.5, per_second["p50_us"], color=c, label=variant)
        bottom.plot(per_second.index + 0.5, per_second["p99_us"], color=c, linestyle="--")
    if all(m.timeline.empty for m in headline):
        bottom.text(0.5, 0.5, "no per-second histograms in this run (recorded since they "
                    "were added)", ha="center", va="center", transform=bottom.transAxes)
    for ax in (top, bottom):
        ax.axvline(0, color="black", linestyle=":", linewidth=1)
        ax.grid(True, alpha=0.3)
        plain(ax)
    top.set_ylabel("server RSS (MiB)")
    top.set_title(f"Over time at {rate:,.0f} req/s (0 = end of warm-up; left of it is thrown "
                  "away)")
    top.legend(fontsize=7, ncol=3)
    bottom.set_ylabel("latency per second (ms):\np50 solid, p99 dashed")
    bottom.set_title("Each second's p50 and p99, the median over the repetitions", fontsize=9)
    bottom.set_ylim(bottom=0)
    bottom.set_xlabel("seconds since the end of warm-up")
    return _save(fig, path)


def population_service(population: pd.DataFrame, connections: pd.DataFrame, run: Run,
                       path: Path) -> Path:
    """At each number of live users: p99 at the common rate (left; a solid line over all
    users uniformly, their credentials minted, or the logged-in ones, dashed over a hot set) and
    what the server served flat out (second), the server's longest garbage-collector pause
    so far, seeding included (third, log scale); a remedy's run with squares. Then p99
    against connections open at once, each its own user (right)."""
    fig, (tail, flat, paused, opened) = plt.subplots(1, 4, figsize=(24, 5))
    if not population.empty:
        for variant in run.variants.ordered(population["variant"]):
            rows = population[population["variant"] == variant]
            for remedy, arm in rows.groupby("remedy", sort=False):
                name = f"{variant} + {remedy}" if remedy else variant
                marker = "s" if remedy else "o"  # the remedy: squares
                common = arm[arm["phase"] == "common"]
                for distribution, cells in common.groupby("distribution", sort=False):
                    cells = cells.sort_values("population")
                    tail.plot(cells["population"], _with_nan(cells, "p99_ms"),
                              marker + ("--" if distribution == "zipf" else "-"),
                              color=colour(run, variant), label=f"{name} ({distribution})")
                saturated = arm[arm["phase"] == "saturation"].sort_values("population")
                if not saturated.empty:
                    flat.plot(saturated["population"], saturated["achieved_rps"],
                              marker + "-", color=colour(run, variant), label=name)
                longest = arm.groupby("population")["gc_longest_ever_ms"].max().dropna()
                if not longest.empty:
                    # Log scale: 0.1 ms stands for anything shorter.
                    paused.plot(longest.index, longest.clip(lower=0.1), marker + "-",
                                color=colour(run, variant), label=name)
        rate = population.loc[population["phase"] == "common", "target_rps"].max()
        tail.set_title(f"p99 at {rate:,.0f} requests/s against live users")
        tail.set_ylabel("p99 (ms, from each request's due time)")
        flat.set_title("Served flat out against live users")
        flat.set_ylabel("requests/s, one server core")
        paused.set_title("Longest GC pause so far against live users")
        paused.set_ylabel("ms, seeding included (log)")
        for ax in (tail, flat, paused):
            ax.set_xlabel("live users (log)")
    if not connections.empty:
        for variant in run.variants.ordered(connections["variant"]):
            cells = connections[connections["variant"] == variant].sort_values("connections")
            opened.plot(cells["connections"], _with_nan(cells, "p99_ms"), "o-",
                        color=colour(run, variant), label=variant)
        rate = connections["target_rps"].max()
        opened.set_title(f"p99 at {rate:,.0f} requests/s against connections open")
        opened.set_xlabel("connections open at once, each its own user (log)")
        opened.set_ylabel("p99 (ms)")
    for ax in (tail, flat, paused, opened):
        if not ax.has_data():
            continue
        ax.set_xscale("log")
        if ax is paused:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        plain(ax)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    if population.empty:
        _empty(tail, "no population experiment measured by the fast generator in this run")
        flat.set_axis_off()
        paused.set_axis_off()
    if connections.empty:
        _empty(opened, "no connections experiment in this run")
    return _save(fig, path)


def all_charts(run: Run, curve: pd.DataFrame, out: Path, requests_per_day: float,
               population: pd.DataFrame, connections: pd.DataFrame) -> dict[str, Path]:
    return {
        "memory": memory_vs_sessions(run, out / "memory_vs_sessions.png"),
        "population": population_service(population, connections, run,
                                         out / "live_users.png"),
        "latency": latency_vs_rate(run, curve, out / "latency_vs_rate.png"),
        "auth": auth_cost(run, out / "auth_cost.png"),
        "knee": knee(run, out / "knee.png"),
        "wire": wire_bytes(run, out / "wire_bytes.png", requests_per_day),
        "replicas": replicas(run, out / "replicas.png"),
        "revocation": revocation(run, out / "revocation.png"),
        "over_time": over_time(run, out / "over_time.png"),
    }

