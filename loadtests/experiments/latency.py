"""Latency against load: every variant at the same fixed request rates, interleaved.

With a calibration, the rates are the profile's `fractions` of the lowest capacity among
the variants measured, so every variant gets the same rates, each within its capacity;
without one, the profile's fixed `rates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from loadtests.experiments.calibrate import tens
from loadtests.runner.context import Context, Planned
from loadtests.runner.profile import ProfileError

NAME = "latency"
RUNS_BY_DEFAULT = True


@dataclass(frozen=True)
class Section:
    rates: tuple[float, ...]
    users: int = 50
    duration_s: float = 4.0
    # With a calibration: each rate a fraction of the lowest capacity of the variants measured
    # (so every variant gets the same rates, all within its capacity); `rates` without one.
    fractions: tuple[float, ...] = ()
    repetitions: int = 0  # 0: the profile's

    PLACEHOLDER: ClassVar[dict[str, Any]] = {"rates": [100]}

    def check(self, where: str) -> None:
        if any(f > 1 for f in self.fractions):
            raise ProfileError(f"{where}.fractions: a fraction of capacity must be at most 1, "
                               f"got {max(self.fractions)!r}")


def rates(ctx: Context) -> tuple[float, ...]:
    """The rates every variant is measured at (see the module's docstring). The other
    experiments measure memory, churn and revocation, not load: they keep their fixed,
    low rates."""
    spec: Section = ctx.profile.latency
    capacities = ctx.capacities or {}
    known = [capacities[v]["capacity_rps"] for v in ctx.profile.variants_for(NAME)
             if capacities.get(v, {}).get("capacity_rps", 0) > 0]
    if not spec.fractions or not known:
        return spec.rates
    return tuple(dict.fromkeys(max(10.0, tens(f * min(known))) for f in spec.fractions))


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.latency
    return [Planned(NAME, variant, f"r{rate:g}", rep, "browse", rate, spec.users,
                    spec.duration_s)
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)
            for rate in rates(ctx)
            for variant in ctx.profile.variants_for(NAME)]  # interleaved


def run(ctx: Context, planned: list[Planned]) -> None:
    with ctx.groups(NAME, ctx.profile.variants_for(NAME)) as groups:
        ctx.measure_each(planned, groups)
