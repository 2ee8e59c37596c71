"""Live users grown step by step (`POST /admin/seed`): server RSS and Redis memory against the
count, and at each size what the server serves, with the fast generator.

At each step: flat out (closed loop: the capacity at that population, reads only), then a
common fixed rate with login churn alongside (a share of the requests are logins, so the
store grows and the garbage collector runs as it would in service). Where the seeded users
are sessions a client can present (session-memory, session-redis), the reads spread over
all N of them, their ids derived from the salt `/admin/seed` gives (loadgen.Derived):
uniformly, and with a power law over the users (a hot set, `zipf`). For the HS256 tokens
(jwt-hs256, and jwt-hs256-revocable, whose N entries are revoked ids no client presents) the
generator mints a token for each of N users with the run's secret (loadgen.Minted), so
their flat line is measured with N distinct tokens, not assumed; so too the encrypted
cookie's (a session cookie for each of N users, encrypted with the run's Fernet key). The
control, which reads no credential, gets the 1,000 real logged-in users'. Every
measurement records the server's garbage-collector pauses.

Churn at the common rate grows a large store too slowly for CPython's full collection, which
runs when what survived since the last one reaches a quarter of it: a store of 10^6 grows by
0.01% a step. So at the `storm_sizes` an in-process store also meets a login storm (half the
requests logins, the rest reads, at a share of what it served flat out at that size) until it
has grown by `storm_growth` of its size: as a service meets a morning's logins, and with it
the collector's walk over the whole store.
Redis stores are left out: their growth costs Redis (seeding them shows it), not the
server's collector.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil

from loadtests.atomic import write_csv
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.loadgen import NAME as LOADGEN
from loadtests.runner.loadgen import Derived, Logins, Minted
from loadtests.runner.profile import ProfileError
from loadtests.runner.sampler import redis_figures
from servers.variants import registry

NAME = "population"
RUNS_BY_DEFAULT = True
COLUMNS = ("variant", "remedy", "repetition", "size", "live_sessions", "seed_seconds",
           "server_rss_bytes", "redis_used_memory_bytes", "redis_keys")


@dataclass(frozen=True)
class Section:
    sizes: tuple[int, ...]
    variants: tuple[str, ...] = ()
    rate: float = 300.0  # the common fixed rate, requests/s
    connections: int = 32
    duration_s: float = 2.0
    saturation_s: float = 1.0  # flat out (closed loop) at each step, first
    zipf: float = 1.1  # the hot set's exponent; 0: uniform only
    warmup_s: float = 0.5  # the fast generator's, before each window
    # At the common rate, this share of the requests are logins (0: reads only).
    login_share: float = 0.0
    # Variants measured a second time with the remedy beside the plain store: their server
    # started with --gc-freeze (the seeded sessions out of the garbage collector's reach).
    remedy: tuple[str, ...] = ()
    repetitions: int = 1
    # The login storm (see above): at these sizes, logins and reads half and half at
    # `storm_load` of what the server served flat out at that size (reads; a login costs
    # more), until the store has grown by `storm_growth` of the size or `storm_max_s` ran.
    storm_sizes: tuple[int, ...] = ()
    storm_growth: float = 0.4
    storm_load: float = 0.4
    storm_max_s: float = 300.0

    PLACEHOLDER: ClassVar[dict[str, Any]] = {"sizes": [1000]}

    def check(self, where: str) -> None:
        stray = sorted(set(self.storm_sizes) - set(self.sizes))
        if stray:
            raise ProfileError(f"{where}.storm_sizes: {stray[0]:,} is not one of the sizes; "
                               f"a storm comes after a size's other steps")


# The remedy's name in labels and rows, and the server flag that applies it.
REMEDY = "gc.freeze"
REMEDY_FLAG = "--gc-freeze"


def derivable(name: str) -> bool:
    """Seeded entries are sessions a client can present (server-side session stores)."""
    return registry.variant(name).state in ("process", "redis")


def mint_kind(name: str) -> str | None:
    """What the generator can mint of this variant's credentials (loadgen.Minted): HS256
    tokens with the run's secret, session cookies encrypted with the run's Fernet key."""
    spec = registry.variant(name)
    if spec.algorithm == "HS256":
        return "hs256"
    return "fernet" if spec.secret == "cookie_key" else None


def mintable(name: str) -> bool:
    return mint_kind(name) is not None


def minted(ctx: Context, name: str, users: int) -> Minted:
    """Users 1..`users` of a variant, their credentials minted by the generator."""
    return Minted(ctx.secret_file(name), 1, users, kind=mint_kind(name) or "")


def distributions(name: str, spec: Section) -> list[str]:
    """Over which users a step's requests go: all N seeded ones (uniform, and a hot set),
    N users' tokens minted by the generator (`minted`), or the real logged-in users where
    the generator can make neither."""
    if mintable(name):
        return ["minted"]
    if not derivable(name):
        return ["logged-in"]
    return ["uniform", "zipf"] if spec.zipf > 0 else ["uniform"]


def stormable(name: str) -> bool:
    """The login storm's mechanism, the collector walking the store, is the process's."""
    return registry.variant(name).state == "process"


# In a storm, every other request is a login.
STORM_LOGIN_EVERY = 2


def remedies(name: str, spec: Section) -> list[str]:
    """The arms a variant is measured in: plain (""), and with the remedy if asked for."""
    return ["", REMEDY] if name in spec.remedy else [""]


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.population
    logins = Logins.at_share(spec.login_share, ctx.profile.login_users)
    churn = {"login_share": logins.share} if logins else {}
    planned = []
    for variant in ctx.profile.variants_for(NAME):
        for remedy in remedies(variant, spec):
            prefix = "freeze-" if remedy else ""
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1):
                for size in spec.sizes:
                    first = distributions(variant, spec)[0]
                    steps = [("flat", first, 0.0, spec.saturation_s)]
                    steps += [(d, d, spec.rate, spec.duration_s)
                              for d in distributions(variant, spec)]
                    planned += [
                        Planned(NAME, variant, f"{prefix}n{size}-{label}", rep, "read", rate,
                                spec.connections, seconds, generator=LOADGEN,
                                warmup=spec.warmup_s, logins=logins if rate else None,
                                info={"population": size, "distribution": users,
                                      "phase": "saturation" if not rate else "common",
                                      **(churn if rate else {}),
                                      **({"remedy": remedy} if remedy else {})})
                        for label, users, rate, seconds in steps]
                    if size in spec.storm_sizes and stormable(variant):
                        planned.append(storm(ctx, variant, size, rep, first, remedy))
    return planned


def storm(ctx: Context, variant: str, size: int, rep: int, users: str, remedy: str
          ) -> Planned:
    """The login storm at `size` live users, its rate and length still open: they come from
    the step's flat-out capacity (storm_at)."""
    spec: Section = ctx.profile.population
    logins = Logins(STORM_LOGIN_EVERY, ctx.profile.login_users)
    prefix = "freeze-" if remedy else ""
    return Planned(NAME, variant, f"{prefix}n{size}-storm", rep, "read", 0.0,
                   spec.connections, 0.0, generator=LOADGEN, warmup=spec.warmup_s,
                   logins=logins,
                   info={"population": size, "distribution": users, "phase": "storm",
                         "login_share": logins.share, "storm_growth": spec.storm_growth,
                         "storm_load": spec.storm_load,
                         **({"remedy": remedy} if remedy else {})})


def storm_at(step: Planned, capacity_rps: float, spec: Section) -> Planned:
    """The storm at `storm_load` of the capacity measured flat out at its size, long enough
    for its logins to grow the store by `storm_growth` (at most `storm_max_s`)."""
    rate = max(10.0, round(spec.storm_load * capacity_rps, -1))
    logins_per_s = rate / STORM_LOGIN_EVERY
    seconds = min(spec.storm_growth * step.info["population"] / logins_per_s,
                  spec.storm_max_s)
    return dataclasses.replace(step, rate=rate, duration=round(seconds, 1),
                               info={**step.info, "capacity_rps": capacity_rps})


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
    """Refuse a step whose users would not fit in the memory available now."""
    per_user = bytes_per_user(state, rows)
    needed = per_user * add
    if needed > MEMORY_SHARE * available:
        raise DoesNotFit(
            f"{add:,} more live users need about {needed / 2**30:.1f} GiB ({per_user:.0f} B "
            f"each), more than {MEMORY_SHARE:.0%} of the {available / 2**30:.1f} GiB this "
            f"machine has available: choose smaller [population] sizes")


def run(ctx: Context, planned: list[Planned]) -> None:
    rows: list[dict[str, Any]] = []
    spec: Section = ctx.profile.population
    path = ctx.run.path / "raw" / NAME / "population.csv"
    for variant in ctx.profile.variants_for(NAME):
        # The plain arm's flat-out capacity at each storm size and repetition: the remedy's
        # storm goes at the same rate, so the two arms meet the same storm.
        storm_bases: dict[tuple[int, int], float] = {}
        for remedy in remedies(variant, spec):
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1):
                # A fresh server and Redis each time: the memory figures are its alone.
                with ctx.groups(NAME, (variant,),
                                extra=(REMEDY_FLAG,) if remedy else ()) as groups:
                    grow_and_measure(ctx, groups.get(variant), rows, path, [
                        p for p in planned if p.variant == variant and p.repetition == rep
                        and p.info.get("remedy", "") == remedy], remedy, rep, storm_bases)


def grow_and_measure(ctx: Context, group: Group | None, rows: list[dict[str, Any]],
                     path: Path, planned: list[Planned], remedy: str, rep: int,
                     storm_bases: dict[tuple[int, int], float]) -> None:
    """One server's steps: seed up to each size, then its measurements; a storm's rate from
    `storm_bases` where the plain arm left one, else from this server's flat out."""
    spec: Section = ctx.profile.population
    live = 0
    for size in spec.sizes:
        steps = [p for p in planned if p.info["population"] == size]
        if group is None or group.failed:
            ctx.skip(len(steps))
            continue
        mine = [r for r in rows if r["variant"] == group.variant and r["repetition"] == rep
                and r["remedy"] == remedy]
        try:
            check_fits(stored_in(group.variant), size - live, mine,
                       psutil.virtual_memory().available)
            row, seeded = grow(ctx, group, size - live, size, rep, remedy)
        except (DoesNotFit, OSError, ValueError, KeyError) as exc:
            # Too big for this machine, refused, lost, garbled.
            group.failed = f"seeding {size:,} live users failed: {exc}"
            ctx.fail(NAME, group.variant, group.failed)
            ctx.skip(len(steps))
            continue
        live = int(row["live_sessions"])
        rows.append(row)
        write_csv(path, COLUMNS, rows)
        capacity = 0.0
        for step in steps:
            if step.info["phase"] == "storm":
                base = storm_bases.setdefault((size, rep), capacity)
                if not base:  # flat out failed: no rate to take a share of
                    ctx.skip()
                    continue
                step = storm_at(step, base, spec)
            given = credentials(ctx, group, step, seeded, spec)
            spread = len(given.read_text().splitlines()) if isinstance(given, Path) \
                else given.users
            measured = ctx.measured(ctx.measure(
                group, step, credentials=given,
                info={"live_sessions_before": live, "spread_over": spread}))
            if step.info["phase"] == "saturation" and measured and measured.record.ok:
                capacity = measured.row(ctx.run.path)["achieved_rps"]
        if any(step.info["phase"] == "storm" for step in steps):
            # The storm's logins are live sessions too: the next step seeds up to its size.
            try:
                live = int(seed(group.urls[0], ctx.admin_token, 0)["live_sessions"])
            except (OSError, ValueError, KeyError) as exc:
                group.failed = f"counting the live users after the login storm failed: {exc}"
                ctx.fail(NAME, group.variant, group.failed)


def credentials(ctx: Context, group: Group, step: Planned, seeded: dict[str, Any] | None,
                spec: Section) -> Path | Derived | Minted:
    """Every seeded session, derived (uniform or hot set), a token for each of the N
    users, minted, or the real users' file."""
    users = step.info["distribution"]
    if users == "minted":
        return minted(ctx, group.variant, step.info["population"])
    if users == "logged-in" or seeded is None:
        return ctx.credentials(group)
    return Derived.seeded_sessions(seeded, spec.zipf if users == "zipf" else 0.0)


def stored_in(name: str) -> str:
    """Where a variant's per-user state grows: the process, Redis (sessions, or a revocable
    token's denylist), or nowhere."""
    spec = registry.variant(name)
    return "redis" if spec.denylist == "redis" else spec.state


def seed(url: str, admin_token: str, count: int) -> dict[str, Any]:
    """`POST /admin/seed` on one server: its answer (docs/api.md)."""
    request = urllib.request.Request(
        url + "/admin/seed", method="POST", data=json.dumps({"count": count}).encode(),
        headers={"Content-Type": "application/json", "X-Admin-Token": admin_token})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.load(answer)  # type: ignore[no-any-return]


def grow(ctx: Context, group: Group, add: int, size: int, rep: int, remedy: str = ""
         ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Seed `add` more live users into the group's first server: its memory after, and how
    to derive the seeded sessions' ids (None where there are none to present)."""
    started = time.perf_counter()
    seeded = seed(group.urls[0], ctx.admin_token, max(0, add))
    seconds = time.perf_counter() - started
    arm = f"{group.variant} + {remedy}" if remedy else group.variant
    ctx.seed_seconds.setdefault(arm, {})[size] = seconds
    time.sleep(0.5)  # let the allocator settle before reading memory
    server = psutil.Process(group.servers[0].child.pid)
    row: dict[str, Any] = {"variant": group.variant, "remedy": remedy, "repetition": rep,
                           "size": size,
                           "live_sessions": seeded["live_sessions"],
                           "seed_seconds": round(seconds, 4),
                           "server_rss_bytes": server.memory_info().rss}
    if group.redis is not None:
        figures = redis_figures(group.redis.client())
        row["redis_used_memory_bytes"] = figures["redis_used_memory_bytes"]
        row["redis_keys"] = figures["redis_keys"]
    return row, seeded.get("seeded_ids")
