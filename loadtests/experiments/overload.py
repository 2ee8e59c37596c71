"""Overload: `factor` times the calibrated capacity for a while, between two calm windows
that show the latency before and after; what was served, errors, peak memory, and whether
the server lived."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.table import Table

from analysis.load import Measurement, peak_rss
from loadtests.atomic import write_csv
from loadtests.experiments.calibrate import tens
from loadtests.runner.context import Context, Planned
from loadtests.runner.profile import ProfileError
from loadtests.runner.tables import csv_table, rss_change

NAME = "overload"
# The fault experiments measure no design: a profile runs them only when it lists them.
RUNS_BY_DEFAULT = False
COLUMNS = ("variant", "capacity_rps", "offered_rps", "users", "achieved_rps",
           "requests", "failures", "server_rss_before_bytes", "server_rss_peak_bytes",
           "p99_before_ms", "p99_overload_ms", "p99_after_ms", "server_alive_after")
WINDOWS = ("before", "overload", "after")


@dataclass(frozen=True)
class Section:
    """`factor` x the calibrated capacity for `duration_s`, between two windows at
    `baseline_fraction` of capacity that show the latency before and after."""

    factor: float = 2.0
    duration_s: float = 30.0
    users: int = 200
    baseline_fraction: float = 0.3
    baseline_s: float = 5.0
    variants: tuple[str, ...] = ("session-redis", "jwt-hs256-revocable")

    def check(self, where: str) -> None:
        if self.baseline_fraction > 1:
            raise ProfileError(f"{where}.baseline_fraction: a fraction of capacity must be at "
                               f"most 1")


def plan(ctx: Context) -> list[Planned]:
    """Three windows per variant; their rates are set when it runs, from the capacities
    known then (a calibration earlier in the same run included)."""
    spec: Section = ctx.profile.overload
    calm_users = ctx.profile.calibrate.users
    return [Planned(NAME, v, label, 1, "browse", 0.0,
                    spec.users if label == "overload" else calm_users,
                    spec.duration_s if label == "overload" else spec.baseline_s,
                    info={"factor": spec.factor})
            for v in ctx.profile.variants_for(NAME) for label in WINDOWS]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.overload
    rows: list[dict[str, Any]] = []
    for name in ctx.profile.variants_for(NAME):
        windows = [p for p in planned if p.variant == name]
        capacity = ((ctx.capacities or {}).get(name) or {}).get("capacity_rps", 0)
        if not capacity:
            ctx.fail(NAME, name, "no calibrated capacity: run make calibrate first, or list "
                     "calibrate in the profile")
            ctx.skip(len(windows))
            continue
        rates = {"before": tens(spec.baseline_fraction * capacity),
                 "overload": tens(spec.factor * capacity),
                 "after": tens(spec.baseline_fraction * capacity)}
        with ctx.groups(NAME, (name,)) as groups:
            group = groups.get(name)
            if group is None:
                ctx.skip(len(windows))
                continue
            measured = {}
            for window in windows:
                measurement = ctx.measured(ctx.measure(
                    group, replace(window, rate=rates[window.label]),
                    info={"capacity_rps": capacity}))
                if measurement is not None:
                    measured[window.label] = measurement
            rows.append(overload_row(name, capacity, rates["overload"], spec.users, measured,
                                     ctx.run.path, group.servers[0].child.alive()))
            write_csv(ctx.run.path / "raw" / NAME / "overload.csv", COLUMNS, rows)


def overload_row(variant_name: str, capacity: float, offered: float, users: int,
                 measured: dict[str, Measurement], run_path: Path, alive: bool
                 ) -> dict[str, Any]:
    """The overload window's throughput, errors and peak RSS; p99 before, during, after."""
    rows = {label: m.row(run_path) for label, m in measured.items()}
    heavy = rows.get("overload", {})

    def rss(label: str) -> int:
        return peak_rss(measured[label].samples) if label in measured else 0

    def p99_ms(label: str) -> float:
        return round(float(rows[label]["latency_us_p99"]) / 1000, 3) if label in rows \
            else float("nan")

    return {
        "variant": variant_name, "capacity_rps": capacity, "offered_rps": offered, "users": users,
        "achieved_rps": round(float(heavy.get("achieved_rps", float("nan"))), 1),
        "requests": heavy.get("requests", 0), "failures": heavy.get("failures", 0),
        "server_rss_before_bytes": rss("before"), "server_rss_peak_bytes": rss("overload"),
        "p99_before_ms": p99_ms("before"), "p99_overload_ms": p99_ms("overload"),
        "p99_after_ms": p99_ms("after"), "server_alive_after": alive,
    }


def summary_tables(run_path: Path) -> list[Table]:
    """The overload figures of a run, for the end of `make soak`."""
    return csv_table(
        run_path / "raw" / NAME / "overload.csv", "Twice the calibrated capacity",
        ("variant", "capacity", "offered", "achieved", "failures / requests",
         "p99 ms before / during / after", "RSS before -> peak MiB", "alive"),
        lambda r: (r.variant, f"{r.capacity_rps:g}", f"{r.offered_rps:g}",
                   f"{r.achieved_rps:.0f}", f"{r.failures} / {r.requests}",
                   f"{r.p99_before_ms:.1f} / {r.p99_overload_ms:.1f} / {r.p99_after_ms:.1f}",
                   rss_change(r.server_rss_before_bytes, r.server_rss_peak_bytes),
                   str(r.server_alive_after)))
