"""The report's charts (matplotlib): one function per chart, the same colour per variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.load import Run, merged
from analysis.summary import memory_fits

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


def memory_vs_sessions(run: Run, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    population = run.population
    if population.empty:
        _empty(ax, "no population experiment in this run")
        return _save(fig, path)
    fits = memory_fits(run)
    for variant in run.variants.ordered(population["variant"]):
        rows = population[population["variant"] == variant]
        memory = rows["server_rss_bytes"] + rows["redis_used_memory_bytes"].fillna(0) \
            if "redis_used_memory_bytes" in rows else rows["server_rss_bytes"]
        fit = fits.get(variant, {}).get("total")
        label = f"{variant}: {fit.slope:,.0f} B/session" if fit else variant
        ax.plot(rows["size"], memory / 2**20, "o-", color=colour(run, variant), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("live sessions (denylisted token ids for jwt-hs256-revocable; "
                  "users for stateless variants)")
    ax.set_ylabel("server RSS + Redis used_memory (MiB)")
    ax.set_title("Server-side memory against live users")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def latency_vs_rate(run: Run, curve: pd.DataFrame, path: Path) -> Path:
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), sharex=True)
    if curve.empty:
        _empty(axes[0], "no latency experiment in this run")
        return _save(fig, path)
    for ax, p in zip(axes, ("p50", "p90", "p99", "p99.9"), strict=True):
        for variant in run.variants.ordered(curve["variant"]):
            rows = curve[curve["variant"] == variant].sort_values("target_rps")
            yerr = [rows[f"{p}_ms"] - rows[f"{p}_ms_low"], rows[f"{p}_ms_high"] - rows[f"{p}_ms"]]
            ax.errorbar(rows["target_rps"], rows[f"{p}_ms"], yerr=yerr, marker="o",
                        capsize=3, color=colour(run, variant), label=variant)
        ax.set_title(f"{p} latency")
        ax.set_xlabel("target rate (requests/s)")
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    return _save(fig, path)


def auth_cost(run: Run, path: Path) -> Path:
    """The server's auth time per request: percentile curves from the merged histograms."""
    fig, ax = plt.subplots(figsize=(8, 5))
    measurements = run.measurements("latency")
    if not measurements:
        _empty(ax, "no latency experiment in this run")
        return _save(fig, path)
    lowest = min(m.record.target_rps for m in measurements)
    percentiles = np.array([1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9])
    for variant in run.variants.ordered({m.record.variant for m in measurements}):
        histogram = merged([m.histogram("auth") for m in measurements
                            if m.record.variant == variant
                            and m.record.target_rps == lowest])
        if histogram is None:
            continue
        values = [histogram.get_value_at_percentile(p) for p in percentiles]
        ax.plot(range(len(percentiles)), values, "o-", color=colour(run, variant), label=variant)
    ax.set_xticks(range(len(percentiles)), [f"p{p:g}" for p in percentiles])
    ax.set_yscale("log")
    ax.set_ylabel("server auth time per request (µs)")
    ax.set_title(f"Server-side authentication cost (Server-Timing, {lowest:g} req/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def throughput(run: Run, curve: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    if curve.empty:
        _empty(ax, "no latency experiment in this run")
        return _save(fig, path)
    for variant in run.variants.ordered(curve["variant"]):
        rows = curve[curve["variant"] == variant].sort_values("target_rps")
        ax.plot(rows["target_rps"], rows["achieved_rps"], "o-", color=colour(run, variant),
                label=variant)
        bound = rows[rows["generator_bound"]]
        ax.scatter(bound["target_rps"], bound["achieved_rps"], marker="x", s=120,
                   color="black", zorder=5)
    top = float(curve["target_rps"].max()) * 1.1
    ax.plot([0, top], [0, top], "--", color="grey", label="target")
    ax.set_xlabel("target rate (requests/s)")
    ax.set_ylabel("achieved rate in the measured window (requests/s)")
    ax.set_title("Throughput achieved against target (x: generator-bound)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
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
    ax.set_ylabel("bytes the credential adds to each request")
    ax.set_title(f"Credential bytes per request (per day at {requests_per_day:,.0f} requests)")
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
            ax.bar(x + offset, values, width=0.4, color=[colour(run, v) for v in variants],
                   hatch=hatch, edgecolor="black", label=routing)
    left.set_ylabel("share of requests failed")
    left.set_title("Replicas: failures, random vs sticky (hatched) routing")
    right.set_ylabel("p99 latency (ms)")
    right.set_title("Replicas: p99 latency")
    for ax in (left, right):
        ax.set_xticks(x, variants, rotation=30, ha="right")
        ax.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize=8)
    return _save(fig, path)


def revocation(run: Run, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    observed = run.revocations
    if observed.empty:
        _empty(ax, "no revocation experiment in this run")
        return _save(fig, path)
    variants = run.variants.ordered(observed["variant"])
    for i, variant in enumerate(variants):
        rows = observed[observed["variant"] == variant]
        refused = rows["refused_after_s"].dropna()
        if len(refused) == len(rows):
            value = float(refused.max()) * 1000
            text = f"refused after ≤ {value:.1f} ms"
        else:
            value, text = float(rows["window_s"].max()) * 1000, (
                f"still accepted after {rows['window_s'].max():g} s (until the token expires)")
        ax.barh(i, value, color=colour(run, variant))
        ax.annotate(text, (value, i), va="center", fontsize=8, xytext=(4, 0),
                    textcoords="offset points")
    ax.set_yticks(range(len(variants)), variants)
    ax.set_xscale("log")
    ax.set_xlabel("how long a logged-out credential kept working (ms, on every replica)")
    ax.set_title("Logout: does the old credential stop working?")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


def over_time(run: Run, path: Path) -> Path:
    """Server RSS and per-second median latency through the latency experiment's runs."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    samples = run.samples("latency")
    if samples.empty:
        _empty(top, "no samples in this run")
        bottom.set_axis_off()
        return _save(fig, path)
    for variant in run.variants.ordered(samples["variant"]):
        rows = samples[(samples["variant"] == variant) & (samples["replica"] == 0)]
        for _, one in rows.groupby(["label", "repetition"]):
            top.plot(one["t"], one["server_rss_bytes"] / 2**20, color=colour(run, variant),
                     alpha=0.6)
        top.plot([], [], color=colour(run, variant), label=variant)
    for m in run.measurements("latency"):
        history = m.path("stats_history.csv")
        if not history.exists():
            continue
        frame = pd.read_csv(history)
        frame = frame[frame["Name"] == "Aggregated"].copy()
        frame["50%"] = pd.to_numeric(frame["50%"], errors="coerce")
        bottom.plot(frame["Timestamp"] - m.window[0], frame["50%"],
                    color=colour(run, m.record.variant), alpha=0.5)
    for ax in (top, bottom):
        ax.axvline(0, color="black", linestyle=":", linewidth=1)
        ax.grid(True, alpha=0.3)
    top.set_ylabel("server RSS (MiB)")
    top.set_title("Over time (0 = end of warm-up; left of it is thrown away)")
    top.legend(fontsize=7, ncol=3)
    bottom.set_ylabel("median latency per second (ms)")
    bottom.set_xlabel("seconds since the end of warm-up")
    return _save(fig, path)


def all_charts(run: Run, curve: pd.DataFrame, out: Path, requests_per_day: float
               ) -> dict[str, Path]:
    return {
        "memory": memory_vs_sessions(run, out / "memory_vs_sessions.png"),
        "latency": latency_vs_rate(run, curve, out / "latency_vs_rate.png"),
        "auth": auth_cost(run, out / "auth_cost.png"),
        "throughput": throughput(run, curve, out / "throughput.png"),
        "wire": wire_bytes(run, out / "wire_bytes.png", requests_per_day),
        "replicas": replicas(run, out / "replicas.png"),
        "revocation": revocation(run, out / "revocation.png"),
        "over_time": over_time(run, out / "over_time.png"),
    }

