"""Replicas of each variant sharing their keys (and Redis), each request to a random
replica or, sticky, to the one that logged the user in: what scaling out costs."""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.runner.context import Context, Planned

NAME = "replicas"
RUNS_BY_DEFAULT = True
ROUTINGS = ("random", "sticky")


@dataclass(frozen=True)
class Section:
    replicas: int = 3
    rate: float = 300.0
    users: int = 30
    duration_s: float = 3.0
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.replicas
    return [Planned(NAME, variant, routing, rep, "replicas", spec.rate, spec.users,
                    spec.duration_s, extra=("--sticky",) if routing == "sticky" else (),
                    info={"routing": routing, "replicas": spec.replicas})
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)
            for routing in ROUTINGS
            for variant in ctx.profile.variants_for(NAME)]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.replicas
    with ctx.groups(NAME, ctx.profile.variants_for(NAME), count=spec.replicas) as groups:
        ctx.measure_each(planned, groups)
