"""Live users grown step by step (`POST /admin/seed`): what one more live user costs in
memory, whether a server serves worse as they grow, and the garbage collector's pauses.

Each variant is one arm of two servers of it on the server core (each its own Redis where
it needs one): the grown server (b), seeded step by step to each size, and its companion
(a), held at the smallest size. At each step:

- memory: the grown server's RSS and its Redis's used memory, read after seeding (their
  slope against live users is what one more costs);
- service, as a duet (loadtests.runner.duet): `windows` windows flat out and as many at one
  fixed rate each, interleaved, b at N against a at the fewest on one core at once, so
  their ratio keeps what N costs and not the core's changes of speed. Flat out: requests
  per CPU-second (capacity per core); at the rate (the same for both and every step, one
  request in ten a login so both stores grow as in service): each side's reads' p99 and
  CPU per request. At the first step both hold the fewest: the arm's A/A control.

Requests go to all N users: seeded sessions a client can present (their ids derived from
the salt `/admin/seed` gives: loadgen.Derived), credentials the generator mints for N users
(HS256 tokens, encrypted session cookies: loadgen.Minted), or the real logged-in users
where neither can be made (the control, the asymmetric tokens).

Churn at a rate grows a large store too slowly for CPython's full collection, which runs
when what survived since the last one reaches a quarter of it. So at `storm_sizes` the
grown server alone (its companion idle) meets a login storm, as a service meets a
morning's logins, and so do the remedy (the in-process store again, with --gc-freeze) and
the control (a server keeping nothing per user): what the store adds to a pause is told
apart from what any server of this application pays (loadtests.experiments.storms).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil

from analysis.duet import read_window
from loadtests.atomic import write_csv
from loadtests.experiments.storms import (
    STORM,
    Arm,
    storm,
    storm_arm,
    storm_arms,
    storm_at,
    storms_for,
    until_full_collection,
)
from loadtests.experiments.users import credentials, distribution, in_process, seed, stored_in
from loadtests.runner import duet
from loadtests.runner.context import Context, Group, Planned, VariantFailed
from loadtests.runner.loadgen import NAME as LOADGEN
from loadtests.runner.loadgen import Logins, tens
from loadtests.runner.processes import ProcessError
from loadtests.runner.profile import ProfileError
from loadtests.runner.sampler import redis_figures
from servers.variants import registry

NAME = "population"
RUNS_BY_DEFAULT = True
COLUMNS = ("variant", "size", "live_sessions", "seed_seconds", "seed_gc_longest_ms",
           "server_rss_bytes", "redis_used_memory_bytes", "redis_keys")
FLAT, RATE = "flat", "rate"
# The duet windows' kind in their records: a store at N against itself at the fewest.
GROWTH = "growth"


@dataclass(frozen=True)
class Section:
    sizes: tuple[int, ...]
    variants: tuple[str, ...] = ()
    connections: int = 32
    # Per step, this many windows flat out and as many at the rate, interleaved.
    windows: int = 5
    window_s: float = 0.5  # a flat-out window
    rate_window_s: float = 1.0  # a window at the rate, longer where `reads` need it
    warmup_s: float = 0.15
    # Each side's rate: this share of the arm's lower capacity per core in its first
    # flat-out window, so both together keep the core about half busy.
    rate_fraction: float = 0.25
    # Reads each side sends in a window at the rate, at least: 1,000 give a p99 (ten
    # beyond it), 10,000 a p99.9.
    reads: int = 1000
    # At the rate, this share of the requests are logins (0: reads only).
    login_share: float = 0.0
    # Requests spread over the users uniformly, or with a power law over them (a hot set).
    zipf: float = 0.0
    # Variants whose storms are met again by a server run with the remedy (--gc-freeze).
    remedy: tuple[str, ...] = ()
    # The control that meets the in-process store's storm: it keeps nothing per user.
    control: str = "none"
    # The login storm (see above); `storm_variants`: the arms that meet it (default: all).
    storm_sizes: tuple[int, ...] = ()
    storm_variants: tuple[str, ...] = ()
    storm_growth: float = 0.4
    # Of the capacity per core for reads: a login costs more, and a storm is half logins.
    storm_load: float = 0.25
    storm_max_s: float = 30.0

    PLACEHOLDER: ClassVar[dict[str, Any]] = {"sizes": [1000]}
    ZERO_ALLOWED: ClassVar[tuple[str, ...]] = ("zipf", "login_share")

    def check(self, where: str) -> None:
        stray = sorted(set(self.storm_sizes) - set(self.sizes))
        if stray:
            raise ProfileError(f"{where}.storm_sizes: {stray[0]:,} is not one of the sizes; "
                               f"a storm comes after a size's other steps")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ProfileError(f"{where}.sizes: from the fewest to the most, each once, got "
                               f"{list(self.sizes)!r}")
        if self.rate_fraction >= 0.5:
            raise ProfileError(f"{where}.rate_fraction: both servers run at that share at "
                               f"once; it must stay under 0.5, got {self.rate_fraction!r}")
        if self.control and self.control not in registry.NAMES:
            raise ProfileError(f"{where}.control: unknown variant {self.control!r}")


def plan(ctx: Context) -> list[Planned]:
    """Every window of every step, then the storms; rates set when they run."""
    spec: Section = ctx.profile.population
    planned = []
    for variant in ctx.profile.variants_for(NAME):
        for size in spec.sizes:
            for k in range(spec.windows):
                planned += [window(variant, size, phase, k, spec) for phase in (FLAT, RATE)]
            if size in spec.storm_sizes and storms_for(spec, variant):
                planned.append(storm(ctx, Arm(variant), size))
    planned += [storm(ctx, arm, size) for arm in storm_arms(ctx) for size in spec.storm_sizes]
    return planned


def window(variant: str, size: int, phase: str, k: int, spec: Section) -> Planned:
    """A duet window of the step at `size`: its rate and length are set when it runs."""
    return Planned(NAME, variant, f"n{size}-{phase}-w{k}", 1, "read", 0.0, spec.connections,
                   spec.window_s if phase == FLAT else spec.rate_window_s, generator=LOADGEN,
                   warmup=spec.warmup_s, info={"population": size, "phase": phase})


# What one live user may cost before this run has measured it: above what reference runs
# measured (about 700 B per session in the process, 367 B in Redis), with room for the
# allocator and the hash tables growing in steps.
FIRST_GUESS_BYTES = {"process": 1500.0, "redis": 800.0}
# Measured costs are taken with this margin, and a step may use this share of the memory
# available when it starts.
MARGIN = 1.5
MEMORY_SHARE = 0.8


class DoesNotFit(Exception):
    """A population step this machine's memory cannot hold; the message says by how much."""


def bytes_per_user(state: str, rows: list[dict[str, Any]]) -> float:
    """What one more live user is expected to cost: the last step's measured cost (server
    RSS plus Redis memory), with a margin, else a first guess by where the state lives."""
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        added = b["live_sessions"] - a["live_sessions"]
        grown = (b["server_rss_bytes"] + (b.get("redis_used_memory_bytes") or 0)) - \
            (a["server_rss_bytes"] + (a.get("redis_used_memory_bytes") or 0))
        if added > 0:
            return max(grown / added, 0.0) * MARGIN
    return FIRST_GUESS_BYTES.get(state, 0.0)


def check_fits(state: str, add: int, rows: list[dict[str, Any]], available: int) -> None:
    """Refuse a step whose users would not fit in the memory available now (the grown
    server's and its companion's)."""
    per_user = bytes_per_user(state, rows)
    needed = per_user * add
    if needed > MEMORY_SHARE * available:
        raise DoesNotFit(
            f"{add:,} more live users need about {needed / 2**30:.1f} GiB ({per_user:.0f} B "
            f"each), more than {MEMORY_SHARE:.0%} of the {available / 2**30:.1f} GiB this "
            f"machine has available: choose smaller [population] sizes")


@dataclass
class Stores:
    """What the run keeps while it grows: the memory rows, and the in-process store's
    storm at each size that the remedy and the control meet again."""

    path: Path
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    storms: dict[int, Planned] = dataclasses.field(default_factory=dict)


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.population
    stores = Stores(ctx.run.path / "raw" / NAME / "population.csv")
    ctx.run.manifest[NAME] = {
        "design": "each variant's grown server (b) against its companion at the fewest "
                  "live users (a), on the server core at once",
        "rate": f"{spec.rate_fraction:g} of the arm's lower capacity per core in its first "
                f"flat-out window, for each server, at every step",
        "storms_matched_to": None}
    ctx.run.save()
    for variant in ctx.profile.variants_for(NAME):
        steps = [p for p in planned if p.variant == variant and "remedy" not in p.info]
        try:
            grow_arm(ctx, variant, steps, stores)
        except (VariantFailed, ProcessError, OSError, ValueError, KeyError) as exc:
            ctx.fail(NAME, variant, str(exc))  # a server lost, a seeding refused or garbled
            made = sum(1 for p in steps if (ctx.run.path / folder_of(p) / "duet.json").exists()
                       or (ctx.run.path / folder_of(p) / "measurement.json").exists())
            ctx.skip(len(steps) - made)
    for arm in storm_arms(ctx):
        steps = [p for p in planned if p.variant == arm.variant and p.info["phase"] == STORM
                 and p.info.get("remedy", "") == arm.remedy
                 and p.label.startswith(arm.prefix)]
        storm_arm(ctx, arm, steps, stores.storms)


def folder_of(planned: Planned) -> Path:
    return Path("raw") / NAME / planned.variant / f"{planned.label}-rep{planned.repetition}"


def grow_arm(ctx: Context, variant: str, steps: list[Planned], stores: Stores) -> None:
    """One variant's two servers: the companion seeded to the fewest, the grown one to each
    size in turn, its memory read, the step's duet windows, its storms."""
    spec: Section = ctx.profile.population
    groups: dict[str, Group] = {}
    try:
        for role in duet.ROLES:
            ctx.describe(f"{NAME} · {variant} · starting {role}")
            groups[role] = ctx.start_group(variant)
            ctx.verify(groups[role])
        fewest = spec.sizes[0]
        companion = seed(groups["a"].urls[0], ctx.admin_token, fewest)
        rate = 0.0
        live = 0
        for size in spec.sizes:
            mine = [r for r in stores.rows if r["variant"] == variant]
            try:
                check_fits(stored_in(variant), size - live, mine,
                           psutil.virtual_memory().available)
            except DoesNotFit as exc:
                raise VariantFailed(f"seeding {size:,} live users failed: {exc}") from exc
            row, grown = grow(ctx, groups["b"], size - live, size)
            live = int(row["live_sessions"])
            stores.rows.append(row)
            write_csv(stores.path, COLUMNS, stores.rows)
            sides = (side(ctx, "a", groups["a"], companion, fewest),
                     side(ctx, "b", groups["b"], grown, size))
            capacities: dict[str, list[float]] = {}
            for k in range(spec.windows):
                for phase in (FLAT, RATE):
                    step = next(p for p in steps if p.label == f"n{size}-{phase}-w{k}")
                    if phase == RATE and not rate:
                        rate = arm_rate(spec, capacities)
                    folder = run_window(ctx, step, sides, rate if phase == RATE else 0.0,
                                        k, {"a_live_sessions": companion.get("live_sessions"),
                                            "b_live_sessions": live})
                    for group in groups.values():
                        group.check_alive()
                    if phase == FLAT:
                        figures = read_window(folder)
                        for role in duet.ROLES:
                            if math.isfinite(figures[f"{role}_per_cpu_second"]):
                                capacities.setdefault(role, []).append(
                                    figures[f"{role}_per_cpu_second"])
            planned_storm = next((p for p in steps if p.label == f"n{size}-storm"), None)
            if planned_storm is not None:
                if not capacities.get("b"):
                    raise VariantFailed(f"no flat-out window at {size:,} to take the "
                                        f"storm's rate from")
                met = storm_at(planned_storm, statistics.median(capacities["b"]), spec)
                reference = stores.storms.get(size)
                if reference is not None:
                    # As long as the in-process store's storm ran, at its own rate.
                    met = dataclasses.replace(met, duration=reference.duration)
                record = ctx.measure(groups["b"], met, credentials=sides[1].credentials,
                                     info={"live_sessions_before": live},
                                     during=until_full_collection(groups["b"]))
                if in_process(variant) and size not in stores.storms and record and record.ok:
                    # The remedy and the control meet this storm as it ran: its rate, and
                    # its length up to where it ended.
                    ran = ctx.measured(record).window  # type: ignore[union-attr]
                    stores.storms[size] = dataclasses.replace(
                        met, duration=round(ran[1] - ran[0], 1))
                    ctx.run.manifest[NAME]["storms_matched_to"] = variant
                # The storm's logins are live sessions too: the next step seeds up to its
                # size from there.
                live = int(seed(groups["b"].urls[0], ctx.admin_token, 0)["live_sessions"])
    finally:
        for group in groups.values():
            ctx.stop_group(group)


def arm_rate(spec: Section, capacities: dict[str, list[float]]) -> float:
    """Each side's rate: `rate_fraction` of the lower of the two capacities per core the
    first flat-out window gave (requests per CPU-second), set once for every step."""
    if len(capacities) < len(duet.ROLES):
        raise VariantFailed("no flat-out window to take the rate from")
    return tens(spec.rate_fraction * min(statistics.median(v) for v in capacities.values()))


def run_window(ctx: Context, step: Planned, sides: tuple[duet.Side, duet.Side], rate: float,
               k: int, info: dict[str, Any]) -> Path:
    """One duet window of a step (flat out at rate 0), its folder; the generator spawned
    first alternates from window to window."""
    spec: Section = ctx.profile.population
    variant, size = step.variant, step.info["population"]
    logins = Logins.at_share(spec.login_share, ctx.profile.login_users) if rate else None
    # Long enough for `reads` reads each at the rate (logins are not reads), with a tenth
    # to spare: a window a few reads short of them shows no p99.
    seconds = max(step.duration, 1.1 * spec.reads / (
        rate * (1 - (logins.share if logins else 0)))) if rate else step.duration
    folder = ctx.run.path / folder_of(step)
    ctx.describe(f"{NAME} · {variant} · {step.label}")
    record = duet.run_window(
        ctx.supervisor, sides,
        duet.Load(step.info["phase"], rate, spec.connections, round(seconds, 2),
                  spec.warmup_s, logins=logins, latency=True),
        folder, ctx.pinning.generator_cpus, duet.ROLES[k % 2],
        {"pair": variant, "kind": GROWTH, "a": variant, "b": variant, "population": size,
         "fewest": spec.sizes[0], "block": size, "window": step.label,
         "distribution": distribution(variant), "pinning": ctx.pinning.as_dict(), **info})
    if record["status"] != "ok":
        raise VariantFailed(f"window {step.label}: {record.get('error')}")
    ctx.done()
    return folder


def side(ctx: Context, role: str, group: Group, seeded: dict[str, Any], users: int
         ) -> duet.Side:
    """One server of an arm, with the credentials its requests spread over."""
    server = group.servers[0]
    return duet.Side(role, group.variant, server.port, server.child.pid,
                     group.redis.child.pid if group.redis and group.redis.child else None,
                     credentials(ctx, group, seeded, users, ctx.profile.population.zipf))


def grow(ctx: Context, group: Group, add: int, size: int) -> tuple[dict[str, Any],
                                                                   dict[str, Any]]:
    """Seed `add` more live users into the group's server: its memory after, and the
    server's answer (how to derive the seeded sessions' ids, where there are any)."""
    started = time.perf_counter()
    try:
        seeded = seed(group.urls[0], ctx.admin_token, max(0, add))
    except (OSError, ValueError, KeyError) as exc:  # refused, lost, garbled
        raise VariantFailed(f"seeding {size:,} live users failed: {exc}") from exc
    seconds = time.perf_counter() - started
    ctx.seed_seconds.setdefault(group.variant, {})[size] = seconds
    time.sleep(0.5)  # let the allocator settle before reading memory
    server = psutil.Process(group.servers[0].child.pid)
    pauses = duet.collector(group.servers[0].port)
    row: dict[str, Any] = {"variant": group.variant, "size": size,
                           "live_sessions": seeded["live_sessions"],
                           "seed_seconds": round(seconds, 4),
                           # The longest pause so far, seeding's included: it grows with
                           # the store each seeding walks.
                           "seed_gc_longest_ms": round(
                               pauses.get("gc_longest_pause_seconds", 0.0) * 1e3, 3),
                           "server_rss_bytes": server.memory_info().rss}
    if group.redis is not None:
        figures = redis_figures(group.redis.client())
        row["redis_used_memory_bytes"] = figures["redis_used_memory_bytes"]
        row["redis_keys"] = figures["redis_keys"]
    return row, seeded
