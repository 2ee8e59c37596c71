"""The store across a network: the Redis variants (`session-redis`, `jwt-hs256-revocable`)
with their Redis reached directly, and through a forwarder that adds a fixed round trip
(loadtests.runner.delay: 0.2 ms and 1 ms by default, data-centre distances), as it is in a
deployment where Redis is another host and the token's verification stays local.

Per variant: one Redis, and one server per setting (all on the server core, one loaded at a
time), the forwarders beside the generator. Then, in `rounds` rounds, each setting in an
order drawn from the run's id: flat out (closed loop, what one core serves) and at the
common rate (latency, and how many requests are in flight: the rate times the mean wait).
Before the load, the round trip each setting adds is measured by PINGs through it
(`raw/network/rtt.csv`), and while the load runs the forwarder's own CPU
(`raw/network/forwarder.csv`).

netem is not in this kernel (no qdisc at all) and Debian packages no toxiproxy, hence the
forwarder; only loopback addresses are used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil

from loadtests.atomic import write_csv
from loadtests.runner import delay, loadgen
from loadtests.runner.context import Context, Group, Planned, VariantFailed
from loadtests.runner.loadgen import tens
from loadtests.runner.processes import ProcessError
from servers.variants.registry import variant

NAME = "network"
RUNS_BY_DEFAULT = True
DIRECT = 0.0  # no forwarder: Redis on loopback, as every other experiment reaches it
RTT_COLUMNS = ("variant", "rtt_ms", "through", "median_ms", "p99_ms", "direct_median_ms")
FORWARDER_COLUMNS = ("variant", "rtt_ms", "label", "cpu_s", "window_s", "requests")


@dataclass(frozen=True)
class Section:
    # Added round trips in ms, beside the direct path (always measured).
    rtts_ms: tuple[float, ...] = (0.2, 1.0)
    variants: tuple[str, ...] = ("session-redis", "jwt-hs256-revocable")
    rounds: int = 1
    flat_s: float = 1.0
    rate_s: float = 1.5
    warmup_s: float = 0.3
    connections: int = 64
    # Without the latency experiment's common rate: this fraction of the variant's
    # capacity (calibrated, else this run's flat out).
    fraction: float = 0.5


def settings(spec: Section) -> tuple[float, ...]:
    return (DIRECT, *spec.rtts_ms)


def label(rtt_ms: float, phase: str) -> str:
    return f"{'direct' if rtt_ms == DIRECT else f'rtt{rtt_ms:g}'}-{phase}"


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.network
    shuffle = random.Random(f"{ctx.run.manifest.get('run_id', '')}-{NAME}")
    planned = []
    for name in redis_variants(ctx):
        for rep in range(1, spec.rounds + 1):
            for rtt in shuffle.sample(settings(spec), len(settings(spec))):
                for phase, seconds in (("saturation", spec.flat_s), ("common", spec.rate_s)):
                    planned.append(Planned(
                        NAME, name, label(rtt, phase), rep, "read", 0.0, spec.connections,
                        seconds, generator=loadgen.NAME, warmup=spec.warmup_s,
                        info={"rtt_ms": rtt, "phase": phase}))
    return planned


def redis_variants(ctx: Context) -> tuple[str, ...]:
    return tuple(v for v in ctx.profile.variants_for(NAME) if variant(v).needs_redis)


def common_rate(ctx: Context, spec: Section, name: str) -> float:
    """The latency experiment's common rate (so the figures compare with its cells), else
    a fraction of the variant's capacity."""
    rates = ctx.run.manifest.get("latency", {}).get("common_rates") or []
    if rates:
        return float(max(rates))
    known = (ctx.run.manifest.get("latency", {}).get("capacities") or {}).get(name) or \
        (ctx.capacities or {}).get(name) or {}
    return tens(spec.fraction * known["capacity_rps"]) if known.get("capacity_rps") else 0.0


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.network
    rtt_rows: list[dict[str, Any]] = []
    cpu_rows: list[dict[str, Any]] = []
    folder = ctx.run.path / "raw" / NAME
    for name in redis_variants(ctx):
        mine = [p for p in planned if p.variant == name]
        try:
            with servers(ctx, spec, name) as (groups, forwarders):
                rtt_rows += round_trips(name, groups, forwarders)
                write_csv(folder / "rtt.csv", RTT_COLUMNS, rtt_rows)
                rate = common_rate(ctx, spec, name)
                for step in mine:
                    rtt = step.info["rtt_ms"]
                    if step.info["phase"] == "common" and not rate:
                        ctx.skip()
                        continue
                    measured = dataclasses.replace(
                        step, rate=rate if step.info["phase"] == "common" else 0.0)
                    forwarder = forwarders.get(rtt)
                    before = cpu_seconds(forwarder)
                    record = ctx.measure(groups[rtt], measured)
                    if forwarder is not None and record is not None:
                        cpu_rows.append({"variant": name, "rtt_ms": rtt,
                                         "label": step.label,
                                         "cpu_s": round(cpu_seconds(forwarder) - before, 3),
                                         "window_s": step.warmup + step.duration
                                         if step.warmup is not None else step.duration,
                                         "requests": record.requests})
                        write_csv(folder / "forwarder.csv", FORWARDER_COLUMNS, cpu_rows)
        except (VariantFailed, ProcessError) as exc:
            ctx.fail(NAME, name, str(exc))
            done = {r.label for r in ctx.records if r.experiment == NAME and r.variant == name}
            ctx.skip(sum(1 for p in mine if p.label not in done))


def cpu_seconds(forwarder: delay.Delayed | None) -> float:
    if forwarder is None:
        return 0.0
    times = psutil.Process(forwarder.child.pid).cpu_times()
    return float(times.user + times.system)


@contextlib.contextmanager
def servers(ctx: Context, spec: Section, name: str
            ) -> Iterator[tuple[dict[float, Group], dict[float, delay.Delayed]]]:
    """The variant's one Redis, a forwarder per added round trip, and a server per setting
    (directly on Redis, or through its forwarder), each verified."""
    redis = ctx.supervisor.redis(ctx.pinning.redis_cpus)
    groups: dict[float, Group] = {}
    forwarders: dict[float, delay.Delayed] = {}
    try:
        for rtt in settings(spec):
            url = redis.url
            if rtt != DIRECT:
                forwarders[rtt] = delay.start(ctx.supervisor, redis, rtt,
                                              ctx.supervisor.log_dir, ctx.pinning.redis_cpus)
                url = forwarders[rtt].url
            ctx.describe(f"{NAME} · {name} · starting its server at {rtt:g} ms")
            server = ctx.supervisor.server(
                name, url, ctx.pinning.server_cpus, env=ctx.server_env(name),
                extra=("--users", str(ctx.profile.login_users)))
            groups[rtt] = Group(name, [server], redis)
            ctx.verify(groups[rtt])
        yield groups, forwarders
    finally:
        for group in groups.values():
            for server in group.servers:
                ctx.supervisor.stop(server.child)
        for forwarder in forwarders.values():
            ctx.supervisor.stop(forwarder.child)
        ctx.supervisor.stop_redis(redis)


def round_trips(name: str, groups: dict[float, Group],
                forwarders: dict[float, delay.Delayed]) -> list[dict[str, Any]]:
    """What each setting adds to a Redis round trip, measured by PINGs through it."""
    direct = delay.round_trip_ms(next(iter(groups.values())).redis.url)  # type: ignore[union-attr]
    rows = [{"variant": name, "rtt_ms": DIRECT, "through": "direct", **rounded(direct),
             "direct_median_ms": round(direct["median_ms"], 4)}]
    for rtt, forwarder in forwarders.items():
        rows.append({"variant": name, "rtt_ms": rtt, "through": "forwarder",
                     **rounded(delay.round_trip_ms(forwarder.url)),
                     "direct_median_ms": round(direct["median_ms"], 4)})
    return rows


def rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in figures.items()}
