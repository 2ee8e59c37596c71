"""Users at once as connections: N concurrent keep-alive connections (10 to 10,000 in
`full`), each its own user and credential, at one fixed total rate, with the fast
generator: p99, errors, and the server's memory per open connection.

On the session stores each connection presents its own seeded session (the ids derived
from the salt `/admin/seed` gives, bound to the connection); on the HS256 tokens and the
encrypted cookie a credential the generator mints for its own user; on the control none
(it reads none); elsewhere its own logged-in user, the server started with as many users.
Every connection opens and serves one read before the warm-up (the generator's priming),
so the window measures the load on connections established and used, not the connecting,
and the server's memory per connection is a used one's whatever the cell's length. Both
processes need a file descriptor per connection: the runner raises its soft limit to the
hard one (its children inherit it) and refuses a count the limit cannot hold.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from loadtests.experiments.users import derivable, mintable, minted, seed
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.loadgen import NAME as LOADGEN
from loadtests.runner.loadgen import Derived, PerConnection, write_credentials
from servers.variants.registry import variant

NAME = "connections"
RUNS_BY_DEFAULT = True
# Descriptors a process needs besides its connections (Redis, logs, the event loop's own).
SPARE_DESCRIPTORS = 200


@dataclass(frozen=True)
class Section:
    counts: tuple[int, ...] = (10, 100, 1000)
    rate: float = 1000.0  # requests/s over all the connections together
    duration_s: float = 2.0
    # After every connection has opened and served a read (the generator's priming).
    warmup_s: float = 0.5
    variants: tuple[str, ...] = ()
    repetitions: int = 1


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.connections
    return [Planned(NAME, name, f"c{count}", rep, "read", spec.rate, count,
                    spec.duration_s, generator=LOADGEN, warmup=spec.warmup_s,
                    info={"connections": count})
            for name in ctx.profile.variants_for(NAME)
            for rep in range(1, ctx.profile.repetitions_for(NAME) + 1)
            for count in spec.counts]


def raise_descriptor_limit(needed: int) -> int:
    """The soft limit on open files raised to the hard one when `needed` is above it (the
    servers and the generator, started after, inherit it); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed > soft and (hard == resource.RLIM_INFINITY or hard > soft):
        soft = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.connections
    largest = max(spec.counts)
    limit = raise_descriptor_limit(largest + SPARE_DESCRIPTORS)
    if largest + SPARE_DESCRIPTORS > limit:
        ctx.fail(NAME, "all", f"{largest:,} connections need about "
                              f"{largest + SPARE_DESCRIPTORS:,} open files; the limit here is "
                              f"{limit:,} (ulimit -n): choose smaller [connections] counts")
        ctx.skip(len(planned))
        return
    for name in ctx.profile.variants_for(NAME):
        steps = [p for p in planned if p.variant == name]
        # As many users as the largest count, for variants whose users log in.
        logs_in = not (derivable(name) or mintable(name) or
                       variant(name).credential == "none")
        extra = ("--users", str(largest)) if logs_in else ()
        with ctx.groups(NAME, (name,), extra=extra) as groups:
            group = groups.get(name)
            if group is None or group.failed:
                ctx.skip(len(steps))
                continue
            try:
                users = own_users(ctx, group, largest)
            except (OSError, ValueError, KeyError) as exc:
                group.failed = f"could not give {largest:,} connections a user each: {exc}"
                ctx.fail(NAME, name, group.failed)
                ctx.skip(len(steps))
                continue
            for step in steps:
                # The generator opens every connection and has it serve one read first.
                ctx.measure(group, step, credentials=users,
                            info={"descriptor_limit": limit, "primed": True})


def own_users(ctx: Context, group: Group, count: int) -> PerConnection:
    """A user per connection: `count` seeded sessions (derived ids), tokens minted for
    `count` users, or `count` users logged in, one credential each; for the control, which
    reads none, no credential at all."""
    if variant(group.variant).credential == "none":
        path = ctx.secrets_dir / f"connections-{group.variant}.txt"
        path.write_text("\n")  # one empty header line, every connection's
        return PerConnection(path)
    if mintable(group.variant):
        return PerConnection(minted(ctx, group.variant, count))
    if derivable(group.variant):
        ids = seed(group.urls[0], ctx.admin_token, count)["seeded_ids"]
        return PerConnection(Derived.seeded_sessions(ids))
    path = ctx.secrets_dir / f"connections-{group.variant}.txt"
    write_credentials(group.urls[0], group.variant, range(1, count + 1), path)
    return PerConnection(path)
