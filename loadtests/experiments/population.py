"""Live users grown step by step (`POST /admin/seed`): server RSS and Redis memory against the
count, and at each size requests spread over a pool of live credentials."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, ClassVar

import psutil

from loadtests.atomic import write_csv
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.sampler import redis_figures
from servers.variants import registry

NAME = "population"
RUNS_BY_DEFAULT = True
COLUMNS = ("variant", "repetition", "size", "live_sessions", "seed_seconds",
           "server_rss_bytes", "redis_used_memory_bytes", "redis_keys")


@dataclass(frozen=True)
class Section:
    sizes: tuple[int, ...]
    variants: tuple[str, ...] = ()
    rate: float = 300.0
    users: int = 20
    duration_s: float = 2.0
    pool_size: int = 500
    repetitions: int = 1

    PLACEHOLDER: ClassVar[dict[str, Any]] = {"sizes": [1000]}


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.population
    return [Planned(NAME, variant, f"n{size}", rep, "population", spec.rate, spec.users,
                    spec.duration_s, extra=("--pool-size", str(spec.pool_size)),
                    info={"population": size})
            for variant in ctx.profile.variants_for(NAME)
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)
            for size in spec.sizes]


# What one live user may cost before this run has measured it: above what the reference
# measured (705 B per session in the process, 367 B in Redis), with room for the allocator
# and the hash tables growing in steps.
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
    path = ctx.run.path / "raw" / NAME / "population.csv"
    for variant in ctx.profile.variants_for(NAME):
        for rep in range(1, ctx.profile.repetitions_for(NAME) + 1):
            # A fresh server and Redis per variant: the memory figures are its alone.
            with ctx.groups(NAME, (variant,)) as groups:
                group = groups.get(variant)
                live = 0
                for step in (p for p in planned if p.variant == variant and p.repetition == rep):
                    if group is None or group.failed:
                        ctx.skip()
                        continue
                    size = step.info["population"]
                    mine = [r for r in rows if r["variant"] == variant and r["repetition"] == rep]
                    try:
                        check_fits(stored_in(variant), size - live, mine,
                                   psutil.virtual_memory().available)
                        row = grow(ctx, group, size - live, size, rep)
                    except (DoesNotFit, OSError, ValueError, KeyError) as exc:
                        # Too big for this machine, refused, lost, garbled.
                        group.failed = f"seeding {size:,} live users failed: {exc}"
                        ctx.fail(NAME, variant, group.failed)
                        ctx.skip()
                        continue
                    live = int(row["live_sessions"])
                    rows.append(row)
                    write_csv(path, COLUMNS, rows)
                    ctx.measure(group, step, info={"live_sessions_before": live})


def stored_in(name: str) -> str:
    """Where a variant's per-user state grows: the process, Redis (sessions, or a revocable
    token's denylist), or nowhere."""
    spec = registry.variant(name)
    return "redis" if spec.denylist == "redis" else spec.state


def grow(ctx: Context, group: Group, add: int, size: int, rep: int) -> dict[str, Any]:
    """Seed `add` more live users into the group's first server; its memory after."""
    url = group.urls[0]
    request = urllib.request.Request(
        url + "/admin/seed", method="POST",
        data=json.dumps({"count": max(0, add)}).encode(),
        headers={"Content-Type": "application/json", "X-Admin-Token": ctx.admin_token})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as answer:
        seeded = json.load(answer)
    seconds = time.perf_counter() - started
    ctx.seed_seconds.setdefault(group.variant, {})[size] = seconds
    time.sleep(0.5)  # let the allocator settle before reading memory
    server = psutil.Process(group.servers[0].child.pid)
    row: dict[str, Any] = {"variant": group.variant, "repetition": rep, "size": size,
                           "live_sessions": seeded["live_sessions"],
                           "seed_seconds": round(seconds, 4),
                           "server_rss_bytes": server.memory_info().rss}
    if group.redis is not None:
        figures = redis_figures(group.redis.client())
        row["redis_used_memory_bytes"] = figures["redis_used_memory_bytes"]
        row["redis_keys"] = figures["redis_keys"]
    return row
