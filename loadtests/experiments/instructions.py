"""Instructions per request, counted by callgrind (loadtests.runner.callgrind): for every
variant, `processes` fresh servers (and their Redis), each warmed up, then `repeats` rounds
of a short and a long window of `requests` sent one at a time, then an idle window (what
each process's timers run a second, taken off every window for its length); the figure
that compares across days and machines with the same software, where every timed figure
moves with the core's speed.

Counts do not depend on what else the machine runs, so the servers of different variants
run side by side, one per core, while nothing else of the run does. Where valgrind is
missing, the manifest says in one line that this figure was not measured.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Any

from loadtests.atomic import write_json
from loadtests.runner import callgrind
from loadtests.runner.context import Context, Planned
from loadtests.runner.folder import now_iso
from loadtests.runner.processes import ProcessError, RedisHandle, ServerHandle
from loadtests.runner.profile import ProfileError
from loadtests.runner.verify import log_in, verify_server
from servers.variants.registry import variant

NAME = "instructions"
RUNS_BY_DEFAULT = True


@dataclass(frozen=True)
class Section:
    processes: int = 3
    warmup_requests: int = 50
    # The two windows' lengths: their difference is what is divided by.
    requests: tuple[int, ...] = (40, 160)
    # Rounds of one window of each length: the figure takes the median count of each
    # length, so one window with an event of its own does not move it.
    repeats: int = 3
    # Real users logged in per server, their credentials taken in turn.
    users: int = 20
    variants: tuple[str, ...] = ()

    def check(self, where: str) -> None:
        if len(self.requests) != 2 or self.requests[0] >= self.requests[1]:
            raise ProfileError(f"{where}.requests: two window lengths, the first the "
                               f"shorter, got {list(self.requests)!r}")
        if self.repeats < 1:
            raise ProfileError(f"{where}.repeats: at least 1, got {self.repeats!r}")


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.instructions
    return [Planned(NAME, v, f"p{k}", k, "read", 0.0, 1, 0.0, generator="callgrind")
            for k in range(1, spec.processes + 1) for v in ctx.profile.variants_for(NAME)]


def run(ctx: Context, planned: list[Planned]) -> None:
    why = callgrind.missing()
    ctx.run.manifest[NAME] = {"measured": why is None, "why_not": why,
                              "valgrind": callgrind.version(),
                              "hash_seed": callgrind.HASH_SEED}
    ctx.run.save()
    if why is not None:
        ctx.describe(f"{NAME}: not measured: {why}")
        ctx.skip(len(planned))
        return
    jobs: queue.Queue[Planned] = queue.Queue()
    for p in planned:
        jobs.put(p)
    stop = threading.Event()

    cores = sorted(os.sched_getaffinity(0) | ctx.pinning.server_cpus)

    def worker(core: int) -> None:
        # This thread (the client, logins included) runs on the other core than its
        # server, as the other worker's does: counts move by up to 3% when a server shares
        # its core with a client, and by 0.2% this way (measured).
        others = set(cores) - {core}
        if others:
            os.sched_setaffinity(0, others)
        while not stop.is_set():
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                count(ctx, job, core)
                ctx.done()
            except (callgrind.CallgrindError, ProcessError, OSError, ValueError) as exc:
                ctx.fail(NAME, job.variant, f"{job.label}: {exc}")
                ctx.skip()

    threads = [threading.Thread(target=worker, args=(core,), name=f"callgrind-{core}",
                                daemon=True) for core in cores]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        stop.set()


def count(ctx: Context, job: Planned, core: int) -> None:
    """One fresh server (and Redis) under callgrind on `core`: verified, logged in, warmed
    up, then the rounds of windows; its folder gets instructions.json."""
    spec: Section = ctx.profile.instructions
    spec_variant = variant(job.variant)
    folder = ctx.run.path / "raw" / NAME / job.variant / job.label
    folder.mkdir(parents=True, exist_ok=True)
    ctx.describe(f"{NAME} · {job.variant} · {job.label}")
    redis: RedisHandle | None = None
    server: ServerHandle | None = None
    try:
        if spec_variant.needs_redis:
            redis = ctx.supervisor.redis({core}, prefix=callgrind.prefix(
                str(folder / "redis.callgrind")))
        env = {**ctx.server_env(job.variant), "PYTHONHASHSEED": callgrind.HASH_SEED}
        server = ctx.supervisor.server(
            job.variant, redis.url if redis else None, {core}, env=env,
            extra=("--users", str(spec.users)),
            prefix=callgrind.prefix(str(folder / "server.callgrind")),
            timeout=callgrind.START_TIMEOUT_S)
        checked = verify_server(server.url, job.variant)
        if not checked.ok:
            raise ValueError("verification failed: " + "; ".join(checked.problems))
        headers = [log_in(server.url, job.variant, k).credential.headers
                   for k in range(1, spec.users + 1)]
        client = callgrind.Client(server.port, headers)
        pids = [server.child.pid] + ([redis.child.pid] if redis and redis.child else [])
        try:
            client.send(spec.warmup_requests)
            windows = callgrind.count_windows(client, pids, spec.requests, spec.repeats)
            idle = callgrind.idle_rates(pids)
        finally:
            client.close()
        record: dict[str, Any] = {
            "experiment": NAME, "variant": job.variant, "process": job.repetition,
            "core": core, "at": now_iso(), "users": spec.users,
            "warmup_requests": spec.warmup_requests, "requests": list(spec.requests),
            "repeats": spec.repeats,
            "server": window_counts(windows, server.child.pid, idle),
            "redis": window_counts(windows, redis.child.pid, idle)
            if redis and redis.child else None,
            "hash_seed": callgrind.HASH_SEED, "valgrind": callgrind.version(),
            "aslr_off": callgrind.prefix("")[0] == "setarch"}
        write_json(folder / "instructions.json", record)
    finally:
        if server is not None:
            ctx.supervisor.stop(server.child)
        if redis is not None:
            ctx.supervisor.stop_redis(redis)
        for dump in folder.glob("*.callgrind"):
            dump.unlink()  # the totals are what the figure uses


def window_counts(windows: dict[int, list[callgrind.Window]], pid: int,
                  idle: dict[int, float]) -> dict[str, Any]:
    """One process's counts and seconds by window length (in the order counted), its idle
    rate, and what one request cost it."""
    shorts, longs = (windows[n] for n in sorted(windows))
    return {"counts": {str(n): [w.counts[pid] for w in ws] for n, ws in windows.items()},
            "seconds": {str(n): [round(w.seconds[pid], 3) for w in ws]
                        for n, ws in windows.items()},
            "idle_per_second": round(idle[pid], 1),
            "per_request": callgrind.per_request(shorts, longs, pid, idle[pid])}
