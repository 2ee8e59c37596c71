"""`make calibrate`: what each variant's authentication costs and how much load it takes.

    python -m loadtests.calibrate [--profile calibrate] [--results DIR]

One bench run of the `calibrate` experiment, server and generator on their pinned cores.
For the control and each variant it measures:

- the primitives alone in a tight loop (`loadtests.primitives`: PyJWT decode per algorithm,
  a redis-py GET to the private Redis, Fernet, a dict lookup);
- the in-server auth cost, from `Server-Timing`, one request at a time (verify.probe_auth);
- the server's CPU per request at one common rate for every variant (`cpu_rate`), and the
  rate its core alone could serve at that cost;
- the capacity: the highest open-model rate whose measured window has no error, a p99
  under the bound and at least 95% of the rate achieved, found by stepping the rate up by
  `growth` until a step misses (twice in a row), then bisecting between the last pass and
  the first miss.
  Each variant says what stopped it: the server's core, the latency bound, or the
  generator (the rate not reached while the server had CPU to spare).

It writes calibration.json into the run folder and copies it to results/calibration.json,
from which `make bench` takes the latency rates as fractions of capacity.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtests.atomic import write_text
from loadtests.profile import Calibrate

CALIBRATION_FILE = "calibration.json"
ACHIEVED_SHARE = 0.95
# A miss with the server's core this busy was the server's limit.
SATURATED_CPU_PERCENT = 85.0

# In-server auth p50 over its primitive in a tight loop (issue #8's targets; None: shown only).
AUTH_PRIMITIVE: dict[str, tuple[tuple[str, ...], float | None]] = {
    "jwt-hs256": (("PyJWT decode HS256",), 1.2),
    "jwt-rs256": (("PyJWT decode RS256",), 1.2),
    "jwt-es256": (("PyJWT decode ES256",), 1.2),
    "jwt-eddsa": (("PyJWT decode EdDSA",), 1.2),
    "jwt-hs256-revocable": (("PyJWT decode HS256", "redis-py EXISTS round trip"), 1.2),
    "session-redis": (("redis-py GET round trip",), 1.3),
    "session-cookie": (("Fernet decrypt",), None),
}
SESSION_MEMORY_BUDGET_US = 5.0
# Capacity over the `none` control's, at least.
CAPACITY_TARGETS = {"session-memory": 0.8, "jwt-hs256": 0.5, "session-redis": 0.45,
                    "jwt-rs256": 0.4, "jwt-es256": 0.25, "jwt-eddsa": 0.25}


@dataclasses.dataclass
class Step:
    """One rate of the capacity search, from its measurement's row (analysis.load)."""

    rate: float
    achieved_rps: float
    p99_ms: float
    errors: int
    server_cpu_percent: float
    generator_cpu_percent: float
    server_cpu_us_per_request: float
    passed: bool
    why: str

    @classmethod
    def from_row(cls, rate: float, row: dict[str, Any] | None, p99_bound_ms: float) -> Step:
        if row is None:
            return cls(rate, 0.0, math.nan, 0, math.nan, math.nan, math.nan, False,
                       "not measured")
        p99_ms = float(row["latency_us_p99"]) / 1000
        achieved = float(row["achieved_rps"])
        errors = int(row["failures"])
        why = ("errors" if errors else
               "p99 over the bound" if not p99_ms <= p99_bound_ms else
               "rate not reached" if not achieved >= ACHIEVED_SHARE * rate else "")
        return cls(rate, round(achieved, 1), round(p99_ms, 3), errors,
                   round(float(row["server_cpu_percent"]), 1),
                   round(float(row["generator_cpu_max"]), 1),
                   round(float(row["server_cpu_us_per_request"]), 1), not why, why)

    def limited_by(self) -> str:
        """What stopped a missed step: errors, the server's core, the latency bound, or
        else the generator (the rate was not reached while the server had CPU to spare:
        Locust's core, or its pacing, which undershoots against a very fast server)."""
        if self.errors:
            return "errors"
        if self.server_cpu_percent >= SATURATED_CPU_PERCENT:
            return "server"
        if self.why == "p99 over the bound":
            return "latency"
        return "generator"


def tens(rate: float) -> float:
    """A rate in whole tens: readable, and as good as any at this precision."""
    return float(round(rate / 10) * 10)


def search_capacity(run_step: Callable[[float], Step], spec: Calibrate) -> dict[str, Any]:
    """Step the rate up until a step misses, then bisect; the highest passing rate wins.

    A miss is tried once more before it counts: on a shared two-core machine one step in a
    few misses 95% of its rate by a hair while neither core is busy (measured: 94.7% of
    5250 req/s with the server at 60% CPU), which would end the search far too early.
    """
    steps: list[Step] = []

    def confirmed(rate: float) -> Step:
        step = run_step(rate)
        steps.append(step)
        if not step.passed:
            step = run_step(rate)
            steps.append(step)
        return step

    passed: Step | None = None
    missed: Step | None = None
    rate = spec.start_rate
    while missed is None:
        step = confirmed(rate)
        if not step.passed:
            missed = step
        else:
            passed = step
            if rate >= spec.max_rate:
                break
            rate = min(spec.max_rate, tens(rate * spec.growth))
    for _ in range(spec.refine_steps if missed is not None else 0):
        low = passed.rate if passed is not None else 0.0
        assert missed is not None
        rate = tens((low + missed.rate) / 2)
        if rate <= low or rate >= missed.rate:
            break
        step = confirmed(rate)
        if step.passed:
            passed = step
        else:
            missed = step
    return {
        "capacity_rps": passed.rate if passed is not None else 0.0,
        "limited_by": missed.limited_by() if missed is not None else "max_rate",
        "steps": [dataclasses.asdict(s) for s in steps],
    }


def cpu_cost(step: Step) -> dict[str, Any]:
    """Server CPU per request at one common rate, and what the server's core alone could
    serve at that cost. The same rate for every variant: per-request CPU falls as the rate
    rises (fixed costs per second, more requests per event-loop turn), so figures taken at
    each variant's own highest rate would not compare (measured: none at 38 to 62 us)."""
    cpu_us = step.server_cpu_us_per_request
    return {"cpu_rate": step.rate, "server_cpu_us_per_request": cpu_us,
            "cpu_capacity_rps": round(1e6 / cpu_us) if cpu_us and cpu_us > 0 else math.nan}


def read_primitives(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    with path.open() as f:
        return {row["primitive"]: float(row["us_per_op"]) for row in csv.DictReader(f)}


def targets(variants: dict[str, dict[str, Any]], primitives: dict[str, float]
            ) -> list[dict[str, Any]]:
    """Every ratio the issue sets a target for (and a few shown without one)."""
    checks: list[dict[str, Any]] = []
    for variant, (names, limit) in AUTH_PRIMITIVE.items():
        measured = variants.get(variant, {}).get("auth_us_p50")
        if measured is None or not all(n in primitives for n in names):
            continue
        base = sum(primitives[n] for n in names)
        checks.append(check(variant, "auth p50 / " + " + ".join(names), measured / base, limit,
                            "<="))
    memory = variants.get("session-memory", {}).get("auth_us_p50")
    if memory is not None:
        checks.append(check("session-memory", "auth p50 (us)", memory,
                            SESSION_MEMORY_BUDGET_US, "<="))
    control = variants.get("none", {})
    server_bound = control.get("limited_by") == "server"
    for variant, floor in CAPACITY_TARGETS.items():
        entry = variants.get(variant)
        if entry is None or not control:
            continue
        # With the control limited by the generator, the search capacities are the
        # generator's and their ratio says little: the server cores' CPU cost decides.
        key = "capacity_rps" if server_bound else "cpu_capacity_rps"
        if not control.get(key):
            continue
        checks.append(check(variant, f"capacity / none ({key})",
                            entry[key] / control[key], floor, ">="))
    return checks


def check(variant: str, what: str, value: float, target: float | None, sense: str
          ) -> dict[str, Any]:
    met = None if target is None or math.isnan(value) else (
        value <= target if sense == "<=" else value >= target)
    return {"variant": variant, "what": what, "value": round(value, 3),
            "target": None if target is None else f"{sense} {target:g}", "met": met}


def table(calibration: dict[str, Any]) -> list[Table]:
    variants = Table(title=f"capacity: p99 <= {calibration['p99_bound_ms']:g} ms, no errors, "
                           f">= {ACHIEVED_SHARE:.0%} of the rate achieved")
    for column in ("variant", "auth p50 us", "auth p90 us", "capacity req/s", "limited by",
                   "server CPU us/req", "CPU capacity req/s"):
        variants.add_column(column, no_wrap=column == "variant",
                            justify="left" if column in ("variant", "limited by") else "right")
    for name, v in calibration["variants"].items():
        variants.add_row(name, f"{v['auth_us_p50']:.1f}", f"{v['auth_us_p90']:.1f}",
                         f"{v['capacity_rps']:g}", v["limited_by"],
                         f"{v['server_cpu_us_per_request']:.0f}", f"{v['cpu_capacity_rps']:.0f}")
    ratios = Table(title="targets (ratios measured in this one run)")
    for column in ("variant", "ratio", "value", "target", "met"):
        ratios.add_column(column, no_wrap=column == "variant",
                          justify="right" if column == "value" else "left")
    for c in calibration["targets"]:
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[c["met"]]
        ratios.add_row(c["variant"], c["what"], f"{c['value']:.2f}", c["target"] or "-", met)
    return [variants, ratios]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="calibrate",
                        help="a profile whose experiments include calibrate")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder that receives the run folder (default: results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from loadtests import bench  # the runner imports this module: import it late

    args = parse_args(argv)
    results = args.results or bench.REPO_ROOT / "results"
    code = bench.main(["--profile", args.profile, "--results", str(results), "--no-report"])
    produced = (results / "latest").resolve() / CALIBRATION_FILE
    # Piped or logged, rich would fold the columns to 80 characters.
    console = Console() if sys.stdout.isatty() else Console(width=130)
    if not produced.exists():
        console.print("no calibration was written: see the run's manifest.json")
        return code or 1
    text = produced.read_text()
    for t in table(json.loads(text)):
        console.print(t)
    write_text(results / CALIBRATION_FILE, text)
    console.print(f"{produced} (also {results / CALIBRATION_FILE}, which make bench uses)")
    return code


if __name__ == "__main__":
    sys.exit(main())
