"""The population's login storms: who meets one, at what rate and for how long, and when it
ends (loadtests/experiments/population.py says why there are storms at all).

Each grown server meets one at the storm sizes, at `storm_load` of its capacity per core
there, until a second after the first full collection it meets while serving, or until
`storm_growth` of its users have logged in anew (at most `storm_max_s`); the arms after the
in-process store's for as long as its storm ran. The remedy (the store with --gc-freeze)
and the control (a server keeping nothing per user) are fresh servers meeting the
in-process store's storm as it ran: its rate, its length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadtests.experiments.users import credentials, distribution, seed
from loadtests.runner import duet
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.loadgen import NAME as LOADGEN
from loadtests.runner.loadgen import Logins

if TYPE_CHECKING:
    from loadtests.experiments.population import Section

NAME = "population"
STORM = "storm"

# The remedy's name in labels and rows, and the server flag that applies it.
REMEDY = "gc.freeze"
REMEDY_FLAG = "--gc-freeze"


@dataclass(frozen=True)
class Arm:
    """One server meeting a storm without the growth steps: the remedy's (the store with
    --gc-freeze) or the control's."""

    variant: str
    remedy: str = ""

    @property
    def prefix(self) -> str:
        return "freeze-" if self.remedy else ""

    @property
    def flags(self) -> tuple[str, ...]:
        return (REMEDY_FLAG,) if self.remedy else ()


def storm_arms(ctx: Context) -> list[Arm]:
    """The remedy's arms and the control's, where the profile has storms for them to meet."""
    spec: Section = ctx.profile.population
    if not spec.storm_sizes:
        return []
    grown = ctx.profile.variants_for(NAME)
    arms = [Arm(v, REMEDY) for v in spec.remedy if v in grown]
    if spec.control and spec.control in ctx.profile.variants:
        arms.append(Arm(spec.control))
    return arms


def storms_for(spec: Section, variant: str) -> bool:
    return not spec.storm_variants or variant in spec.storm_variants


def storm(ctx: Context, arm: Arm, size: int) -> Planned:
    """The login storm at `size` live users, its rate and length still open: they come from
    a capacity measured at that size (storm_at)."""
    spec: Section = ctx.profile.population
    logins = Logins(STORM_LOGIN_EVERY, ctx.profile.login_users)
    return Planned(NAME, arm.variant, f"{arm.prefix}n{size}-storm", 1, "read", 0.0,
                   spec.connections, 0.0, generator=LOADGEN, warmup=spec.warmup_s,
                   logins=logins,
                   info={"population": size, "distribution": distribution(arm.variant),
                         "phase": STORM, "login_share": logins.share,
                         "storm_growth": spec.storm_growth, "storm_load": spec.storm_load,
                         **({"remedy": arm.remedy} if arm.remedy else {})})


# In a storm, every other request is a login.
STORM_LOGIN_EVERY = 2


def storm_at(step: Planned, capacity_rps: float, spec: Section) -> Planned:
    """The storm at `storm_load` of a capacity measured at its size, long enough for
    `storm_growth` of the size to log in (at most `storm_max_s`)."""
    rate = max(10.0, round(spec.storm_load * capacity_rps, -1))
    logins_per_s = rate / STORM_LOGIN_EVERY
    seconds = min(spec.storm_growth * step.info["population"] / logins_per_s,
                  spec.storm_max_s)
    return dataclasses.replace(step, rate=rate, duration=round(seconds, 1),
                               info={**step.info, "capacity_rps": capacity_rps})


def matched(step: Planned, reference: Planned) -> Planned:
    """A storm at the rate and for the length of another's (the in-process store's): the
    same requests, met by the remedy or the control."""
    return dataclasses.replace(step, rate=reference.rate, duration=reference.duration,
                               info={**step.info, "capacity_rps": reference.info[
                                   "capacity_rps"], "matched": reference.variant})


def storm_arm(ctx: Context, arm: Arm, steps: list[Planned], storms: dict[int, Planned]
              ) -> None:
    """A fresh server (with the remedy, or the control) seeded to each storm size, meeting
    the in-process store's storm there (`storms`: by size, as it ran)."""
    with ctx.groups(NAME, (arm.variant,), extra=arm.flags) as groups:
        group = groups.get(arm.variant)
        live = 0
        for step in sorted(steps, key=lambda p: p.info["population"]):
            size = step.info["population"]
            reference = storms.get(size)
            if group is not None and not group.failed and reference is None:
                group.failed = f"no in-process store's storm at {size:,} to meet again"
                ctx.fail(NAME, arm.variant, group.failed)
            if group is None or group.failed:
                ctx.skip()
                continue
            try:
                seeded = seed(group.urls[0], ctx.admin_token, max(0, size - live))
            except (OSError, ValueError, KeyError) as exc:
                group.failed = f"seeding {size:,} live users failed: {exc}"
                ctx.fail(NAME, arm.variant, group.failed)
                ctx.skip()
                continue
            live = int(seeded["live_sessions"])
            ctx.measure(group, matched(step, reference),
                        credentials=credentials(ctx, group, seeded, size,
                                                ctx.profile.population.zipf),
                        info={"live_sessions_before": live},
                        during=until_full_collection(group))


# A storm ends this long after the first full collection it met (the reads it held up
# answered by then), or at its planned end.
STORM_TAIL_S = 1.0
POLL_S = 0.5


def until_full_collection(group: Group) -> Callable[[float], bool]:
    """For ctx.measure's `during`: True once the server has met a full collection while
    serving since the storm began and STORM_TAIL_S have passed: what the storm is for has
    been seen, and a longer storm would spend the run's time on nothing new."""
    port = group.servers[0].port
    state: dict[str, float] = {}

    def seen(elapsed: float) -> bool:
        if elapsed - state.get("polled", -POLL_S) < POLL_S:
            return "met" in state and elapsed - state["met"] >= STORM_TAIL_S
        state["polled"] = elapsed
        full = duet.collector(port).get("gc_full_pauses")
        if full is None:
            return False
        state.setdefault("before", full)
        if full > state["before"]:
            state.setdefault("met", elapsed)
        return "met" in state and elapsed - state["met"] >= STORM_TAIL_S

    return seen
