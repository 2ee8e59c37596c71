"""Latency and throughput against load, with the fast generator (loadtests.runner.loadgen):
every request a protected read carrying one of 1,000 real users' credentials, its latency
counted from when it was due.

Three phases, every variant's server on its own pinned core:

1. saturation: closed loop (`connections` requests always in flight),
   `saturation_repetitions` times, variants interleaved: what each serves flat out alone,
   the capacity the knee and the common rates are fractions of when there is no
   calibration. The verdict's capacity per core comes from the duet (both servers of a
   pair on one core at once), not from these cells.
2. common rates: every variant at the same fixed rates in randomized interleaved slices
   (each round every variant once, in an order drawn anew each round from a seed the run
   records: Abedi and Brecht, ICPE 2017), `repetitions` rounds: client latency and the
   server's auth time at equal load, each slice `duration_s` or long enough for
   `common_requests` requests, whichever is longer. Beside them, in the same rounds, the
   generator's own floor at that rate against nginx (`floor`), where nginx is installed:
   a p99 near the floor says nothing about the server. The rates are `fractions` of the
   lowest capacity (or the fixed `rates`).
3. the knee: each variant at `knee` fractions of its own capacity (0.25 to 1.2), once,
   each point long enough for `knee_requests` requests (a p99 needs 1,000): latency and
   achieved rate up to and past the point where the server's core runs out.

A variant's capacity is its calibration's (the highest rate within the service level, from
`make calibrate`) when there is one, else the median of its saturation phase here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from loadtests.runner import loadgen, nginx
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.loadgen import tens
from loadtests.runner.processes import ServerHandle
from loadtests.runner.profile import ProfileError

NAME = "latency"
RUNS_BY_DEFAULT = True
SATURATION, COMMON, KNEE = "saturation", "common", "knee"
# The generator's floor: nginx at the common rates, filed under this name (not a variant).
FLOOR = "nginx"


@dataclass(frozen=True)
class Section:
    # Common rates: fractions of the lowest capacity among the variants, or fixed `rates`
    # (one or the other).
    fractions: tuple[float, ...] = ()
    rates: tuple[float, ...] = ()
    duration_s: float = 5.0
    # ... or longer, each common-rate slice long enough for this many requests (0: no such
    # floor): a p99 needs 1,000, and on a slow day the common rate (a fraction of the
    # lowest capacity) falls.
    common_requests: int = 0
    # The knee: fractions of each variant's own capacity.
    knee: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 1.0, 1.2)
    knee_s: float = 3.0
    knee_requests: int = 1500
    saturation_s: float = 2.0
    connections: int = 64
    warmup_s: float = 0.5
    repetitions: int = 0  # 0: the profile's: the common-rate rounds
    saturation_repetitions: int = 0  # 0: as many as the rounds
    # The generator's floor at the common rates, against nginx (where it is installed).
    floor: bool = True
    variants: tuple[str, ...] = ()
    # The knee of these variants only (default: every variant of the experiment).
    knee_variants: tuple[str, ...] = ()

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
    calibration) when it has run. The common-rate rounds each in their own order, drawn
    from the run's seed."""
    spec: Section = ctx.profile.latency
    variants = ctx.profile.variants_for(NAME)
    rounds = ctx.profile.repetitions_for(NAME)
    saturations = range(1, (spec.saturation_repetitions or rounds) + 1)
    common = spec.fractions or spec.rates
    shuffle = random.Random(order_seed(ctx))
    # Without nginx the floor's cells are not planned (the manifest says why), so a run
    # without it is still complete.
    cells = [*variants, *((FLOOR,) if spec.floor and nginx.binary() is not None else ())]

    def planned(variant: str, label: str, rep: int, phase: str, duration: float,
                **info: Any) -> Planned:
        return Planned(NAME, variant, label, rep, "read", 0.0, spec.connections, duration,
                       info={"phase": phase, **info}, generator=loadgen.NAME,
                       warmup=spec.warmup_s)

    common_cells = []
    for rep in range(1, rounds + 1):
        for i in range(len(common)):
            order = shuffle.sample(cells, len(cells))
            common_cells += [planned(v, f"c{i}", rep, COMMON, spec.duration_s, common_index=i,
                                     slot=slot) for slot, v in enumerate(order)]
    return ([planned(v, SATURATION, rep, SATURATION, spec.saturation_s)
             for rep in saturations for v in variants]
            + common_cells
            + [planned(v, f"k{f:g}", 1, KNEE, spec.knee_s, fraction=f)
               for f in spec.knee for v in variants
               if not spec.knee_variants or v in spec.knee_variants])


def order_seed(ctx: Context) -> str:
    """The seed the common-rate rounds' orders are drawn from: the run's id, recorded in
    its manifest, so the orders are known and can be drawn again."""
    return str(ctx.run.manifest.get("run_id", ""))


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
    with ctx.groups(NAME, ctx.profile.variants_for(NAME)) as groups, \
            floor_group(ctx, spec, planned) as floor:
        if floor is not None:
            groups[FLOOR] = floor
        saturated: dict[str, list[float]] = {}
        for p in [p for p in planned if p.info["phase"] == SATURATION]:
            measured = ctx.measured(measure(ctx, groups, p))
            if measured is not None and measured.record.ok:
                saturated.setdefault(p.variant, []).append(
                    measured.row(ctx.run.path)["achieved_rps"])
        capacity = capacities(ctx, saturated)
        rates = common_rates(spec, capacity)
        ctx.run.manifest.setdefault("latency", {}).update(
            capacities=capacity, common_rates=list(rates), order_seed=order_seed(ctx),
            floor=floor_state(spec, floor))
        ctx.run.save()
        for p in [p for p in planned if p.info["phase"] == COMMON]:
            rate = rates[p.info["common_index"]] if p.info["common_index"] < len(rates) \
                else 0.0
            duration = max(p.duration, spec.common_requests / rate) if rate \
                and spec.common_requests else p.duration
            measure(ctx, groups, dataclasses.replace(p, label=f"r{rate:g}", rate=rate,
                                                     duration=duration), skip=not rate)
        for p in [p for p in planned if p.info["phase"] == KNEE]:
            own = capacity.get(p.variant)
            rate = tens(p.info["fraction"] * own["capacity_rps"]) if own else 0.0
            duration = max(spec.knee_s, spec.knee_requests / rate) if rate else spec.knee_s
            measure(ctx, groups, dataclasses.replace(
                p, rate=rate, duration=duration, info={**p.info, **(own or {})}),
                skip=not rate)


@contextlib.contextmanager
def floor_group(ctx: Context, spec: Section, planned: list[Planned]) -> Iterator[Group | None]:
    """nginx on the server's core, in the place of a variant's group, for the floor's
    cells; None where the profile leaves it out or the machine has no nginx (the manifest
    says which)."""
    if not spec.floor or not any(p.variant == FLOOR for p in planned):
        yield None
        return
    if nginx.binary() is None:
        ctx.describe(f"{NAME}: the generator's floor not measured: nginx is not installed")
        yield None
        return
    with nginx.running(ctx.supervisor, ctx.pinning.server_cpus) as server:
        yield Group(FLOOR, [ServerHandle(FLOOR, server.url, server.child)], None,
                    credentials=server.credentials)


def floor_state(spec: Section, floor: Group | None) -> dict[str, Any]:
    if not spec.floor:
        return {"measured": False, "why_not": "the profile leaves it out"}
    if floor is None:
        return {"measured": False, "why_not": "nginx is not installed "
                                              "(Debian: apt-get install nginx-light)"}
    return {"measured": True, "target": "nginx, one worker, on the server's core"}


def measure(ctx: Context, groups: dict[str, Group], planned: Planned, skip: bool = False
            ) -> Any:
    group = groups.get(planned.variant)
    if group is None or skip:
        ctx.skip()
        return None
    return ctx.measure(group, planned)
