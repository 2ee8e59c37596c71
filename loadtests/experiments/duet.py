"""The duet: every declared pair's two servers on the server core at once, each driven by
its own fast generator from the generator core (loadtests.runner.duet), plus one variant
against itself (the A/A control: the run's noise floor).

Per pair, in `blocks` (round robin across the pairs, so that every pair meets the machine's
moods alike), each block with both servers started afresh (a fresh process, hash seed and
address layout; the start order and so the ports alternate):

- `flat_windows` windows flat out (closed loop): each server's requests per CPU-second of
  its own process, its capacity per core; their ratio is the pair's;
- `rate_windows` windows at one fixed rate each (the same for both: `rate_fraction` of the
  lower of the two capacities per core its first flat-out windows gave, so both together
  offer at most half what the core serves): CPU per request, the server's and its own
  Redis's, at equal load.

The generator spawned first alternates from window to window. The analysis (analysis.duet)
turns the windows into geometric means of per-window ratios with their interval.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from analysis.duet import read_window
from loadtests.runner import duet, loadgen
from loadtests.runner.context import Context, Group, Planned, VariantFailed
from loadtests.runner.loadgen import tens
from loadtests.runner.processes import ProcessError
from loadtests.runner.profile import Profile, ProfileError
from servers.variants.registry import DECLARED_PAIRS, NAMES

NAME = "duet"
RUNS_BY_DEFAULT = True
FLAT, RATE = "flat", "rate"
AA, DECLARED, NAMED = "aa", "declared", "named"


@dataclass(frozen=True)
class Section:
    # More pairs than the declared ones, "session:token" each.
    pairs: tuple[str, ...] = ()
    # The A/A control: this variant against itself.
    control: str = "session-memory"
    # Only the pairs within these variants (default: every variant the profile runs).
    variants: tuple[str, ...] = ()
    # Declared pairs this profile leaves out, "session:token" each (the manifest says so).
    leave_out: tuple[str, ...] = ()
    blocks: int = 4
    flat_windows: int = 3
    rate_windows: int = 3
    # The A/A control's windows per block, in multiples of a pair's: its interval must lie
    # within ±3%, where a pair's need only be within ±5%.
    control_rounds: int = 1
    window_s: float = 1.0
    rate_window_s: float = 1.5
    warmup_s: float = 0.15
    connections: int = 32
    rate_fraction: float = 0.25
    # Real users logged in per server, their credentials taken in turn.
    users: int = 200

    def check(self, where: str) -> None:
        for pair in (*self.pairs, *self.leave_out):
            names = pair.split(":")
            if len(names) != 2 or not all(n in NAMES for n in names):
                raise ProfileError(f"{where}.pairs: {pair!r} is not 'variant:variant' of "
                                   f"known variants")
        if self.control not in NAMES:
            raise ProfileError(f"{where}.control: unknown variant {self.control!r}")
        if self.rate_fraction >= 0.5:
            raise ProfileError(f"{where}.rate_fraction: both servers run at that fraction "
                               f"at once; it must stay under 0.5, got {self.rate_fraction!r}")


@dataclass(frozen=True)
class DuetPair:
    a: str
    b: str
    kind: str  # aa, declared, named

    @property
    def name(self) -> str:
        return f"{self.a}__{self.b}"

    @property
    def variants(self) -> tuple[str, str]:
        return (self.a, self.b)


def pairs(profile: Profile) -> list[DuetPair]:
    """The A/A control, then the declared pairs and the profile's own, among the profile's
    variants (the session side is `a`, the token `b`)."""
    spec: Section = profile.duet
    present = set(profile.variants_for(NAME))
    found: list[DuetPair] = []
    if spec.control in present:
        found.append(DuetPair(spec.control, spec.control, AA))
    found += [DuetPair(p.session, p.token, DECLARED) for p in DECLARED_PAIRS
              if {p.session, p.token} <= present
              and f"{p.session}:{p.token}" not in spec.leave_out]
    for named in spec.pairs:
        a, b = named.split(":")
        if {a, b} <= present and all((p.a, p.b) != (a, b) for p in found):
            found.append(DuetPair(a, b, NAMED))
    return found


def windows(spec: Section, pair: DuetPair) -> list[tuple[str, int]]:
    """A block's windows for `pair`: flat out, then at the rate."""
    rounds = spec.control_rounds if pair.kind == AA else 1
    return [(FLAT, k) for k in range(spec.flat_windows * rounds)] + \
        [(RATE, k) for k in range(spec.rate_windows * rounds)]


def plan(ctx: Context) -> list[Planned]:
    """One entry per window (for the run's progress); the rates are set when it runs."""
    spec: Section = ctx.profile.duet
    return [Planned(NAME, p.name, f"{phase}-b{block}-w{k}", block, "read", 0.0,
                    spec.connections, spec.window_s if phase == FLAT else spec.rate_window_s,
                    info={"phase": phase, "kind": p.kind}, generator=loadgen.NAME)
            for block in range(1, spec.blocks + 1) for p in pairs(ctx.profile)
            for phase, k in windows(spec, p)]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.duet
    chosen = pairs(ctx.profile)
    ctx.run.manifest[NAME] = {
        "pairs": [dataclasses.asdict(p) for p in chosen], "left_out": list(spec.leave_out),
        "rate": f"{spec.rate_fraction:g} of the lower of the pair's two capacities per core "
                f"(its first block's flat-out windows), for each server"}
    ctx.run.save()
    estimates: dict[str, dict[str, list[float]]] = {}
    rates: dict[str, float] = {}
    failed: set[str] = set()
    for block in range(1, spec.blocks + 1):
        for pair in chosen:
            steps = [p for p in planned if p.variant == pair.name and p.repetition == block]
            if pair.name in failed:
                ctx.skip(len(steps))
                continue
            try:
                run_block(ctx, spec, pair, block, steps, estimates, rates)
            except (VariantFailed, ProcessError) as exc:
                failed.add(pair.name)
                ctx.fail(NAME, pair.name, str(exc))
                made = sum(1 for p in steps
                           if (ctx.run.path / folder_of(pair, p) / "duet.json").exists())
                ctx.skip(len(steps) - made)


def folder_of(pair: DuetPair, planned: Planned, root: str = NAME) -> Path:
    return Path("raw") / root / pair.name / planned.label


def run_block(ctx: Context, spec: Section, pair: DuetPair, block: int, steps: list[Planned],
              estimates: dict[str, dict[str, list[float]]], rates: dict[str, float],
              root: str = NAME, count: bool = True) -> None:
    """Both servers started (in this block's order), verified and logged in, every window
    of the block (into raw/`root`/), both stopped; `count`: each window is one of the
    run's planned measurements."""
    order = (("a", pair.a), ("b", pair.b)) if block % 2 else (("b", pair.b), ("a", pair.a))
    groups: dict[str, Group] = {}
    try:
        for role, name in order:
            ctx.describe(f"{NAME} · {pair.name} · block {block} · starting {role}")
            groups[role] = ctx.start_group(name)
            ctx.verify(groups[role])
        sides = (side(ctx, "a", groups["a"], spec.users),
                 side(ctx, "b", groups["b"], spec.users))
        for i, step in enumerate(steps):
            phase = step.info["phase"]
            # The pair's rate is set once, from its first flat-out windows, and kept.
            rate = rates.setdefault(pair.name, own_rate(spec, estimates.get(pair.name, {}))) \
                if phase == RATE else 0.0
            if phase == RATE and not rate:
                raise VariantFailed("no flat-out window to take the fixed rate from")
            ctx.describe(f"{NAME} · {pair.name} · {step.label}")
            folder = ctx.run.path / folder_of(pair, step, root)
            record = duet.run_window(
                ctx.supervisor, sides,
                duet.Load(phase, rate, spec.connections, step.duration, spec.warmup_s),
                folder, ctx.pinning.generator_cpus, duet.ROLES[(block + i) % 2],
                {"pair": pair.name, "kind": pair.kind, "a": pair.a, "b": pair.b,
                 "block": block, "window": step.label, "pinning": ctx.pinning.as_dict()})
            for group in groups.values():
                group.check_alive()
            if record["status"] != "ok":
                raise VariantFailed(f"window {step.label}: {record.get('error')}")
            if count:
                ctx.done()
            if phase == FLAT:
                figures = read_window(folder)
                for role in duet.ROLES:
                    value = figures[f"{role}_per_cpu_second"]
                    if math.isfinite(value):
                        estimates.setdefault(pair.name, {}).setdefault(role, []).append(value)
    finally:
        for group in groups.values():
            ctx.stop_group(group)


def own_rate(spec: Section, estimates: dict[str, list[float]]) -> float:
    """The pair's fixed rate: `rate_fraction` of the lower of its two servers' capacities
    per core (the median of their flat-out windows' requests per CPU-second so far), so
    that at every pair's rate the core runs about as busy: the figure's noise grows as the
    core idles between requests (an A/A at a tenth of its capacity varied 8.6% from window
    to window, at a quarter 2.4%)."""
    medians = [statistics.median(v) for v in estimates.values() if v]
    return tens(spec.rate_fraction * min(medians)) if len(medians) == len(duet.ROLES) else 0.0


def side(ctx: Context, role: str, group: Group, users: int) -> duet.Side:
    """One side of the duet, with `users` real users logged in for its generator."""
    server = group.servers[0]
    path = ctx.secrets_dir / f"duet-{role}-{group.variant}.txt"
    loadgen.write_credentials(server.url, group.variant,
                              range(1, min(users, ctx.profile.login_users) + 1), path)
    return duet.Side(role, group.variant, server.port, server.child.pid,
                     group.redis.child.pid if group.redis and group.redis.child else None,
                     path)
