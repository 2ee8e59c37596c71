"""Revocation: log out, keep presenting the old credential to every replica, and record
how long it still works."""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.runner.context import Context, Planned

NAME = "revocation"
RUNS_BY_DEFAULT = True


@dataclass(frozen=True)
class Section:
    window_s: float = 2.0
    duration_s: float = 4.0
    users: int = 5
    rate: float = 100.0
    replicas: int = 3
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.revocation
    return [Planned(NAME, variant, "revocation", rep, "revocation", spec.rate, spec.users,
                    spec.duration_s, extra=("--revocation-window", str(spec.window_s)),
                    info={"replicas": spec.replicas, "window_s": spec.window_s})
            for variant in ctx.profile.variants_for(NAME)
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.revocation
    for variant in ctx.profile.variants_for(NAME):  # one variant's replicas at a time
        with ctx.groups(NAME, (variant,), count=spec.replicas) as groups:
            ctx.measure_each([p for p in planned if p.variant == variant], groups)
