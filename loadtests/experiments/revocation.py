"""Revocation: log out, keep presenting the old credential to every replica, and record how
long it still works: refused at once where logout revokes, accepted until it expires where
it cannot. Sessions and tokens live `credential_ttl_s` here, shorter than the window, so
"accepted until it expires" is observed and timed, not assumed."""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.runner.context import Context, Planned
from loadtests.runner.profile import ProfileError

NAME = "revocation"
RUNS_BY_DEFAULT = True


@dataclass(frozen=True)
class Section:
    window_s: float = 5.0
    credential_ttl_s: int = 3
    # The resolution of "when it stopped working": a round of probes of every replica, then
    # this pause (a probe takes about a millisecond on loopback).
    probe_interval_s: float = 0.002
    duration_s: float = 8.0
    users: int = 2
    rate: float = 100.0
    replicas: int = 2
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's

    def check(self, where: str) -> None:
        if self.window_s <= self.credential_ttl_s:
            raise ProfileError(f"{where}: window_s must be longer than credential_ttl_s, so a "
                               f"credential that cannot be revoked is seen to expire")


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.revocation
    return [Planned(NAME, variant, "revocation", rep, "revocation", spec.rate, spec.users,
                    spec.duration_s,
                    extra=("--revocation-window", str(spec.window_s),
                           "--revocation-probe-interval", str(spec.probe_interval_s)),
                    info={"replicas": spec.replicas, "window_s": spec.window_s,
                          "credential_ttl_s": spec.credential_ttl_s,
                          "probe_interval_s": spec.probe_interval_s})
            for variant in ctx.profile.variants_for(NAME)
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.revocation
    ttl = str(spec.credential_ttl_s)
    for variant in ctx.profile.variants_for(NAME):  # one variant's replicas at a time
        with ctx.groups(NAME, (variant,), count=spec.replicas,
                        extra=("--session-ttl", ttl, "--token-ttl", ttl)) as groups:
            ctx.measure_each([p for p in planned if p.variant == variant], groups)
