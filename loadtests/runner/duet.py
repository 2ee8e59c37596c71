"""Two servers sharing one core at the same time, each driven by its own fast generator:
one window of a duet (Bulej et al., "Duet benchmarking", ICPE 2020).

This machine's core changes speed by up to 1.9x within a second, with no steal to show it,
so a ratio of two figures measured one after the other carries that change. Measured at
once on one core, a slow stretch hits both servers alike and their ratio keeps what the
code costs. Both generators connect first, then wait for one wall-clock moment
(`--start-at`), so their measured windows cover the same time to within a millisecond.

CPU comes from /proc/<pid>/task/*/schedstat (nanoseconds on a CPU, summed over the
process's threads), sampled every 20 ms through the window: psutil's cpu_times count in
10 ms ticks, too coarse for a window of a second shared by two servers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.atomic import write_csv, write_json
from loadtests.runner import loadgen
from loadtests.runner.folder import now_iso
from loadtests.runner.processes import Supervisor
from loadtests.runner.sampler import scrape_metrics

SAMPLE_S = 0.02
# From spawning the generators to their common start: time to start and connect.
START_AHEAD_S = 0.12
ROLES = ("a", "b")
SCHEDSTAT_COLUMNS = ("timestamp", *(f"{role}_{who}_cpu_ns" for role in ROLES
                                    for who in ("server", "redis")))


def cpu_ns(pid: int | None) -> int | None:
    """Nanoseconds a process's threads have spent on a CPU (None once it is gone)."""
    if pid is None:
        return None
    total, found = 0, False
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
            found = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
    return total if found else None


def sample_times(start: float, end: float) -> list[float]:
    """When to read the CPU times: just before the window, at its start, every SAMPLE_S,
    at its end, and just after it."""
    inner = [start + k * SAMPLE_S for k in range(1, int((end - start) / SAMPLE_S))]
    return [start - SAMPLE_S, start, *inner, end, end + SAMPLE_S]


def sample(sides: tuple[Side, Side]) -> dict[str, Any]:
    row: dict[str, Any] = {"timestamp": time.time()}
    for side in sides:
        row[f"{side.role}_server_cpu_ns"] = cpu_ns(side.server_pid)
        row[f"{side.role}_redis_cpu_ns"] = cpu_ns(side.redis_pid)
    return row


@dataclass(frozen=True)
class Side:
    """One server of a duet: its variant, where it listens, what to time, what it is sent."""

    role: str  # "a" or "b"
    variant: str
    port: int
    server_pid: int
    redis_pid: int | None
    credentials: loadgen.Credentials


@dataclass(frozen=True)
class Load:
    """What both generators send in a window: flat out (rate 0: closed loop) or a fixed
    rate each, over `connections` each; with login churn beside the reads if `logins`;
    each side's latency histograms kept (under <role>/) if `latency`."""

    phase: str
    rate: float
    connections: int
    duration_s: float
    warmup_s: float
    logins: loadgen.Logins | None = None
    latency: bool = False


def collector(port: int) -> dict[str, float]:
    """A server's garbage-collector figures from its /metrics (NaN-free: {} if it does not
    answer), read outside the measured window."""
    try:
        figures = scrape_metrics(f"http://127.0.0.1:{port}")
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in figures.items() if k.startswith("gc_")}


def run_window(supervisor: Supervisor, sides: tuple[Side, Side], load: Load, folder: Path,
               generator_cpus: frozenset[int], first: str, info: dict[str, Any]
               ) -> dict[str, Any]:
    """Both generators at once against their servers; `folder` gets `duet.json` (what was
    asked, each generator's counts, each server's collector figures before and after) and
    `schedstat.csv` (every process's CPU time through the window), and with `load.latency`
    each side's histograms (`a/loadgen_*`, `b/loadgen_*`). `first` names the side whose
    generator is spawned first."""
    folder.mkdir(parents=True, exist_ok=True)
    gc_before = {s.role: collector(s.port) for s in sides}  # before the clock starts
    start_at = time.time() + START_AHEAD_S
    ordered = sorted(sides, key=lambda s: s.role != first)
    # At a fixed rate the second generator starts half a period later: the two servers'
    # requests then arrive in turn, not both at the same instant, where whichever wakes
    # first would make the other wait and answer in a batch, window after window.
    offset = {ordered[0].role: 0.0,
              ordered[1].role: 0.5 / load.rate if load.rate > 0 else 0.0}
    outputs = {s.role: folder / f"{s.role}_{loadgen.NAME}_requests.txt" for s in sides}
    record: dict[str, Any] = {
        "experiment": "duet", **info, "phase": load.phase, "rate": load.rate,
        "connections": load.connections, "duration_s": load.duration_s,
        "warmup_s": load.warmup_s, "first": first, "start_at": start_at,
        "started_at": now_iso(), "status": "running",
        "sides": {s.role: {"variant": s.variant, "port": s.port, "server_pid": s.server_pid,
                           "redis_pid": s.redis_pid, "start_offset_s": offset[s.role],
                           "gc_before": gc_before[s.role]}
                  for s in sides}}
    if load.logins is not None:
        record["login_every"] = load.logins.every
    children = []
    rows: list[dict[str, Any]] = []
    try:
        for side in ordered:
            argv = loadgen.command(side.port, side.credentials, outputs[side.role],
                                   rate=load.rate, connections=load.connections,
                                   duration=load.duration_s, warmup=load.warmup_s,
                                   logins=load.logins, start_at=start_at + offset[side.role])
            children.append(supervisor.spawn(f"{loadgen.NAME} duet {side.role}", argv,
                                             folder / f"{side.role}_{loadgen.NAME}.log",
                                             generator_cpus))
        window_start = start_at + load.warmup_s
        window_end = window_start + load.duration_s
        # Samples exactly at the window's edges and every SAMPLE_S between them, so the CPU
        # over the window is read, not spread over a sampling interval around it.
        for at in sample_times(window_start, window_end):
            pause = at - time.time()
            if pause > 0:
                time.sleep(pause)
            rows.append(sample(sides))
        # And on until both generators have exited: a generator that started late (its
        # core busy spawning the other) measures a window ending after the planned one,
        # and its CPU must still lie between two samples.
        deadline = window_end + 30
        while any(c.alive() for c in children) and time.time() < deadline:
            time.sleep(SAMPLE_S)
            rows.append(sample(sides))
        codes = [supervisor.stop(c) for c in children]
    finally:
        for child in children:
            supervisor.stop(child)
        write_csv(folder / "schedstat.csv", SCHEDSTAT_COLUMNS, rows)
    failed = [f"{s.role}: exit {code}" for s, code in zip(ordered, codes, strict=True) if code]
    for side in sides:
        output = outputs[side.role]
        record["sides"][side.role]["gc_after"] = collector(side.port)
        if output.exists():
            record["sides"][side.role].update(loadgen.read_counts(output).as_dict())
            if load.latency:
                loadgen.read_result(output).write(folder / side.role / loadgen.NAME, start_at)
            output.unlink()  # the counts and histograms are what the figures use
        elif not failed:
            failed.append(f"{side.role}: no output")
    record.update(status="failed" if failed else "ok", ended_at=now_iso())
    if failed:
        record["error"] = "; ".join(failed)
    write_json(folder / "duet.json", record)
    return record
