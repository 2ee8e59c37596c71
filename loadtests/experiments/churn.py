"""Login churn: log in, a few requests, log out, again; short session and token lifetimes,
so the write path and expiry run under load."""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.runner.context import Context, Planned

NAME = "churn"
RUNS_BY_DEFAULT = True


@dataclass(frozen=True)
class Section:
    rate: float = 300.0
    users: int = 30
    duration_s: float = 5.0
    session_ttl: int = 3
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.churn
    return [Planned(NAME, variant, "churn", rep, "churn", spec.rate, spec.users,
                    spec.duration_s, info={"session_ttl": spec.session_ttl})
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)
            for variant in ctx.profile.variants_for(NAME)]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.churn
    ttl = str(spec.session_ttl)
    with ctx.groups(NAME, ctx.profile.variants_for(NAME),
                    extra=("--session-ttl", ttl, "--token-ttl", ttl)) as groups:
        ctx.measure_each(planned, groups)
