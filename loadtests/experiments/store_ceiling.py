"""The shared store's ceiling: one Redis, alone on the server core, driven flat out with
exactly the command each Redis variant's request sends (a GET of a session's key for
`session-redis`, an EXISTS of a token id for `jwt-hs256-revocable`), one at a time on each
of `connections` connections, as the servers' clients send them (no pipelining), by
redis-benchmark from the generator core. Lookups per second per Redis core, and how busy
the Redis core was (at 90% or more the store, not the client, was the limit): so "one
Redis core carries K server cores" is a measured figure (analysis.ceiling).

redis-benchmark comes with Redis (Debian's redis-tools); where it is missing the manifest
says in one line that this figure was not measured.
"""

from __future__ import annotations

import csv
import io
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from loadtests.atomic import write_csv
from loadtests.runner.context import Context, Planned
from loadtests.runner.duet import cpu_ns
from loadtests.runner.processes import ProcessError
from servers.variants.registry import SESSION_COOKIE
from servers.variants.tokens import RevocableJwt

NAME = "store_ceiling"
RUNS_BY_DEFAULT = True
COLUMNS = ("variant", "command", "connections", "requests", "seconds", "rps",
           "redis_cpu_percent", "client_cpu_percent")
# What each variant's request sends, on a key shaped like the servers' own: a session's
# JSON (about 60 bytes, as aiohttp-session stores it) and a denylisted token id.
COMMANDS = {
    "session-redis": ("GET", f"{SESSION_COOKIE}_0123456789abcdef0123456789abcdef",
                      '{"created": 1796000000, "session": {"user": "user1234"}}'),
    "jwt-hs256-revocable": ("EXISTS", f"{RevocableJwt.PREFIX}0123456789abcdef0123456789abcdef",
                            "1"),
}


@dataclass(frozen=True)
class Section:
    connections: int = 50
    requests: int = 300_000


def plan(ctx: Context) -> list[Planned]:
    return [Planned(NAME, v, "ceiling", 1, "redis", 0.0, ctx.profile.store_ceiling.connections,
                    0.0, generator="redis-benchmark")
            for v in ctx.profile.variants_for(NAME) if v in COMMANDS]


def run(ctx: Context, planned: list[Planned]) -> None:
    spec: Section = ctx.profile.store_ceiling
    benchmark = shutil.which("redis-benchmark")
    ctx.run.manifest[NAME] = {"measured": benchmark is not None, "why_not": None if benchmark
                              else "redis-benchmark is not installed (Debian: apt-get "
                                   "install redis-tools)"}
    ctx.run.save()
    if benchmark is None or not planned:
        ctx.skip(len(planned))
        return
    # The store alone on a core of its own: the server's, idle in this experiment.
    redis = ctx.supervisor.redis(ctx.pinning.server_cpus)
    rows = []
    try:
        for step in planned:
            command, key, value = COMMANDS[step.variant]
            redis.client().set(key, value)
            ctx.describe(f"{NAME} · {step.variant} · {command} flat out")
            rows.append(drive(ctx, benchmark, redis.port, redis.child.pid  # type: ignore[union-attr]
                              if redis.child else None, step.variant, command, key, spec))
            write_csv(ctx.run.path / "raw" / NAME / "ceiling.csv", COLUMNS, rows)
            ctx.done()
    except (ProcessError, OSError, ValueError) as exc:
        ctx.fail(NAME, "all", str(exc))
    finally:
        ctx.supervisor.stop_redis(redis)


def drive(ctx: Context, benchmark: str, port: int, redis_pid: int | None, name: str,
          command: str, key: str, spec: Section) -> dict[str, Any]:
    """One redis-benchmark run of one command, Redis's and the client's CPU around it."""
    argv = ["taskset", "-c", ",".join(map(str, sorted(ctx.pinning.generator_cpus))),
            benchmark, "-h", "127.0.0.1", "-p", str(port), "-c", str(spec.connections),
            "-n", str(spec.requests), "-P", "1", "--csv", command, key]
    redis_before = cpu_ns(redis_pid) or 0
    client_before = children_cpu_s()
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    redis_after = cpu_ns(redis_pid) or 0
    client = children_cpu_s() - client_before
    if done.returncode != 0:
        raise ProcessError(f"redis-benchmark failed: {(done.stderr or done.stdout)[-300:]}")
    rps = rps_of(done.stdout)
    return {"variant": name, "command": command, "connections": spec.connections,
            "requests": spec.requests, "seconds": round(seconds, 3), "rps": rps,
            "redis_cpu_percent": round((redis_after - redis_before) / 1e9 * 100 / seconds, 1),
            "client_cpu_percent": round(client * 100 / seconds, 1)}


def children_cpu_s() -> float:
    """CPU time of this process's reaped children: around one subprocess.run, its own."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rps_of(output: str) -> float:
    """The requests per second redis-benchmark --csv reports ("test","rps",... then a row)."""
    rows = list(csv.DictReader(io.StringIO(output)))
    if not rows or "rps" not in rows[-1]:
        raise ValueError(f"no rate in redis-benchmark's answer: {output.strip()[-200:]}")
    return float(rows[-1]["rps"])
