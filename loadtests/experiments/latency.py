"""Latency and throughput against load, with the fast generator (loadtests.runner.loadgen):
every request a protected read carrying one of 1,000 real users' credentials, its latency
counted from when it was due.

Three phases, every variant's server on its own pinned core:

1. saturation: closed loop (`connections` requests always in flight), `repetitions` times,
   variants interleaved; what each serves flat out, and at what CPU: its capacity per
   server core.
2. common rates: every variant at the same fixed rates, `repetitions` times, interleaved:
   the headline latency, CPU and auth figures, compared at equal load. The rates are
   `fractions` of the lowest capacity (or the fixed `rates`).
3. the knee: each variant at `knee` fractions of its own capacity (0.25 to 1.2), once,
   each point long enough for `knee_requests` requests (a p99 needs 1,000): latency and
   achieved rate up to and past the point where the server's core runs out.

A variant's capacity is its calibration's (the highest rate within the service level, from
`make calibrate`) when there is one, else the median of its saturation phase here.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any, ClassVar

from loadtests.experiments.calibrate import tens
from loadtests.runner import loadgen
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.profile import ProfileError

NAME = "latency"
RUNS_BY_DEFAULT = True
SATURATION, COMMON, KNEE = "saturation", "common", "knee"


@dataclass(frozen=True)
class Section:
    # Common rates: fractions of the lowest capacity among the variants, or fixed `rates`
    # (one or the other).
    fractions: tuple[float, ...] = ()
    rates: tuple[float, ...] = ()
    duration_s: float = 5.0
    # The knee: fractions of each variant's own capacity.
    knee: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 1.0, 1.2)
    knee_s: float = 3.0
    knee_requests: int = 1500
    saturation_s: float = 2.0
    connections: int = 64
    warmup_s: float = 0.5
    repetitions: int = 0  # 0: the profile's
    variants: tuple[str, ...] = ()

    PLACEHOLDER: ClassVar[dict[str, Any]] = {"fractions": [0.5]}

    def check(self, where: str) -> None:
        if bool(self.fractions) == bool(self.rates):
            raise ProfileError(f"{where}: give the common rates as `fractions` of the lowest "
                               f"capacity or as fixed `rates`, one of the two")
        if any(f > 1 for f in self.fractions):
            raise ProfileError(f"{where}.fractions: a fraction of capacity must be at most 1, "
                               f"got {max(self.fractions)!r}")


def plan(ctx: Context) -> list[Planned]:
    """Every measurement, rates still open: they come from the saturation phase (or the
    calibration) when it has run."""
    spec: Section = ctx.profile.latency
    variants = ctx.profile.variants_for(NAME)
    repetitions = range(1, ctx.profile.repetitions_for(NAME) + 1)
    common = spec.fractions or spec.rates

    def planned(variant: str, label: str, rep: int, phase: str, duration: float,
                **info: Any) -> Planned:
        return Planned(NAME, variant, label, rep, "read", 0.0, spec.connections, duration,
                       info={"phase": phase, **info}, generator=loadgen.NAME,
                       warmup=spec.warmup_s)

    return ([planned(v, SATURATION, rep, SATURATION, spec.saturation_s)
             for rep in repetitions for v in variants]
            + [planned(v, f"c{i}", rep, COMMON, spec.duration_s, common_index=i)
               for rep in repetitions for i in range(len(common)) for v in variants]
            + [planned(v, f"k{f:g}", 1, KNEE, spec.knee_s, fraction=f)
               for f in spec.knee for v in variants])


def capacities(ctx: Context, saturated: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Each variant's capacity, and where it comes from (see the module's docstring)."""
    calibration = ctx.capacities or {}
    found = {}
    for variant in ctx.profile.variants_for(NAME):
        calibrated = calibration.get(variant, {}).get("capacity_rps", 0)
        if calibrated > 0:
            found[variant] = {"capacity_rps": float(calibrated), "capacity_from": "calibration"}
        elif saturated.get(variant):
            found[variant] = {"capacity_rps": statistics.median(saturated[variant]),
                              "capacity_from": "saturation"}
    return found


def common_rates(spec: Section, capacity: dict[str, dict[str, Any]]) -> tuple[float, ...]:
    if not spec.fractions:
        return spec.rates
    lowest = min((c["capacity_rps"] for c in capacity.values()), default=0.0)
    if not lowest:
        return ()  # nothing saturated: no rate to take a fraction of
    return tuple(max(10.0, tens(f * lowest)) for f in spec.fractions)


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.latency
    with ctx.groups(NAME, ctx.profile.variants_for(NAME)) as groups:
        saturated: dict[str, list[float]] = {}
        for p in [p for p in planned if p.info["phase"] == SATURATION]:
            measured = ctx.measured(measure(ctx, groups, p))
            if measured is not None and measured.record.ok:
                saturated.setdefault(p.variant, []).append(
                    measured.row(ctx.run.path)["achieved_rps"])
        capacity = capacities(ctx, saturated)
        rates = common_rates(spec, capacity)
        ctx.run.manifest.setdefault("latency", {}).update(
            capacities=capacity, common_rates=list(rates))
        ctx.run.save()
        for p in [p for p in planned if p.info["phase"] == COMMON]:
            rate = rates[p.info["common_index"]] if p.info["common_index"] < len(rates) \
                else 0.0
            measure(ctx, groups, dataclasses.replace(p, label=f"r{rate:g}", rate=rate),
                    skip=not rate)
        for p in [p for p in planned if p.info["phase"] == KNEE]:
            own = capacity.get(p.variant)
            rate = tens(p.info["fraction"] * own["capacity_rps"]) if own else 0.0
            duration = max(spec.knee_s, spec.knee_requests / rate) if rate else spec.knee_s
            measure(ctx, groups, dataclasses.replace(
                p, rate=rate, duration=duration, info={**p.info, **(own or {})}),
                skip=not rate)


def measure(ctx: Context, groups: dict[str, Group], planned: Planned, skip: bool = False
            ) -> Any:
    group = groups.get(planned.variant)
    if group is None or skip:
        ctx.skip()
        return None
    return ctx.measure(group, planned)
