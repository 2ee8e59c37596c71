"""Store outage: while Locust loads a Redis-backed variant, the runner stops its Redis and
starts it again on the same port. A probe beside the load sends one request every 50 ms and records
what the server answered and how long it took, so the outage window, every 503's latency
and the recovery time are measured by the runner, not inferred from Locust's per-second
counts.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from analysis.load import MeasurementRecord, peak_rss
from loadtests.atomic import write_csv
from loadtests.runner.context import Context, Group, Planned
from loadtests.runner.profile import ProfileError
from loadtests.runner.tables import csv_table, rss_change
from loadtests.runner.verify import log_in
from loadtests.swarm.credentials import Credential
from servers.variants.registry import variant

NAME = "outage"
# The fault experiments measure no design: a profile runs them only when it lists them.
RUNS_BY_DEFAULT = False

PROBE_COLUMNS = ("timestamp", "status", "latency_ms")
COLUMNS = ("variant", "redis_stopped_at", "redis_ready_at", "down_s", "probes",
                  "probes_during_outage", "probe_503", "probe_other_errors",
                  "max_503_latency_ms", "p99_outage_latency_ms", "recovery_s",
                  "locust_requests", "locust_failures", "server_rss_before_bytes",
                  "server_rss_peak_bytes", "server_alive_after")


class Probe(threading.Thread):
    """GET /me every `interval` seconds on one keep-alive connection, each answer recorded.

    A refused credential (a session Redis forgot when it restarted) logs in again; a broken
    connection is recorded as status 0 and reopened. Loopback only, stops when told.
    """

    def __init__(self, url: str, variant: str, interval: float = 0.05) -> None:
        super().__init__(name=f"probe {variant}", daemon=True)
        self.url, self.variant, self.interval = url, variant, interval
        self.rows: list[dict[str, Any]] = []
        self._finished = threading.Event()
        self._credential: Credential | None = None

    def stop(self) -> None:
        self._finished.set()
        self.join(timeout=5)

    def _connect(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self.url)
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)

    def run(self) -> None:
        conn = self._connect()
        while not self._finished.is_set():
            started = time.time()
            status = 0
            try:
                if self._credential is None:
                    self._credential = log_in(self.url, self.variant).credential
                conn.request("GET", "/me", headers=self._credential.headers)
                answer = conn.getresponse()
                answer.read()
                status = answer.status
                if status == 401:
                    self._credential = None
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = self._connect()
            self.rows.append({"timestamp": started, "status": status,
                              "latency_ms": round((time.time() - started) * 1000, 3)})
            self._finished.wait(max(0.0, self.interval - (time.time() - started)))
        conn.close()

    def write(self, path: Path) -> None:
        write_csv(path, PROBE_COLUMNS, self.rows)


@dataclass
class OutageClock:
    """When Redis went down and when it answered again (wall-clock seconds)."""

    stop_after_s: float
    down_s: float
    stopped_at: float | None = None
    ready_at: float | None = None

    def due_to_stop(self, elapsed: float) -> bool:
        return self.stopped_at is None and elapsed >= self.stop_after_s

    def due_to_start(self) -> bool:
        return (self.stopped_at is not None and self.ready_at is None
                and time.time() >= self.stopped_at + self.down_s)


def outage_row(variant_name: str, clock: OutageClock, probe_rows: list[dict[str, Any]],
               record: MeasurementRecord | None, samples: pd.DataFrame, alive: bool
               ) -> dict[str, Any]:
    """What the probe saw: 503 latencies while Redis was gone, and time to the first
    answer after it came back that was not a 503."""
    probes = pd.DataFrame(probe_rows, columns=list(PROBE_COLUMNS))
    stopped, ready = clock.stopped_at or float("nan"), clock.ready_at or float("nan")
    during = probes[(probes["timestamp"] >= stopped) & (probes["timestamp"] < ready)]
    unavailable = probes[probes["status"] == 503]
    after = probes[(probes["timestamp"] >= ready) & (probes["status"] != 503)
                   & (probes["status"] != 0)]
    # Probes are recorded in order: the first after Redis is back, when its answer came.
    recovered = (after["timestamp"] + after["latency_ms"] / 1000).iloc[0] if len(after) \
        else None
    return {
        "variant": variant_name, "redis_stopped_at": round(stopped, 3),
        "redis_ready_at": round(ready, 3), "down_s": round(ready - stopped, 3),
        "probes": len(probes), "probes_during_outage": len(during),
        "probe_503": int((during["status"] == 503).sum()),
        # Not a 503 and not an answer from the store (200, or 401 for a session Redis
        # forgot): a 500, or no answer at all. The last probes of the window may already
        # be answered from the store: it can answer a little before our PING sees it.
        "probe_other_errors": int((~during["status"].isin((503, 200, 401))).sum()),
        "max_503_latency_ms": float(unavailable["latency_ms"].max()) if len(unavailable)
        else float("nan"),
        "p99_outage_latency_ms": float(during["latency_ms"].quantile(0.99)) if len(during)
        else float("nan"),
        "recovery_s": round(recovered - ready, 3) if recovered is not None else float("nan"),
        "locust_requests": record.requests if record else 0,
        "locust_failures": record.failures if record else 0,
        "server_rss_before_bytes": peak_rss(samples, before=stopped),
        "server_rss_peak_bytes": peak_rss(samples),
        "server_alive_after": alive,
    }


@dataclass(frozen=True)
class Section:
    """Redis stopped `stop_after_s` after the load starts, started again `down_s` later
    on the same port (variants that use Redis only)."""

    rate: float = 200.0
    users: int = 4
    duration_s: float = 8.0
    stop_after_s: float = 3.0
    down_s: float = 2.0
    variants: tuple[str, ...] = ("session-redis", "jwt-hs256-revocable")

    def check(self, where: str) -> None:
        if self.stop_after_s + self.down_s >= self.duration_s:
            raise ProfileError(f"{where}: stop_after_s + down_s must end before duration_s, "
                               f"so the run sees Redis come back")


def plan(ctx: Context) -> list[Planned]:
    spec: Section = ctx.profile.outage
    return [Planned(NAME, v, "outage", 1, "browse", spec.rate, spec.users, spec.duration_s,
                    info={"stop_after_s": spec.stop_after_s, "down_s": spec.down_s})
            for v in ctx.profile.variants_for(NAME) if variant(v).needs_redis]


def run(ctx: Context, planned: list[Planned]) -> None:
    """Redis stopped under load and started again on its port, a probe beside the load."""
    spec: Section = ctx.profile.outage
    rows: list[dict[str, Any]] = []
    for step in planned:
        with ctx.groups(NAME, (step.variant,)) as groups:
            group = groups.get(step.variant)
            if group is None or group.failed or group.redis is None:
                ctx.skip()
                continue
            clock = OutageClock(spec.stop_after_s, spec.down_s)
            probe = Probe(group.urls[0], step.variant)
            probe.start()
            try:
                record = ctx.measure(group, step, during=restarter(ctx, group, clock))
            finally:
                probe.stop()
            probe.write(ctx.run.path / "raw" / NAME / step.variant / "outage-rep1" / "probe.csv")
            measurement = ctx.measured(record)
            samples = measurement.samples if measurement else pd.DataFrame()
            rows.append(outage_row(step.variant, clock, probe.rows, record, samples,
                                   group.servers[0].child.alive()))
            write_csv(ctx.run.path / "raw" / NAME / "outage.csv", COLUMNS, rows)


def restarter(ctx: Context, group: Group, clock: OutageClock) -> Callable[[float], None]:
    """What `measure` calls while Locust runs: stop Redis when due, start it when due."""
    port = group.redis.port if group.redis is not None else None

    def during(elapsed: float) -> None:
        if clock.due_to_stop(elapsed) and group.redis is not None:
            ctx.describe(f"outage · {group.variant} · Redis stopped")
            ctx.supervisor.stop_redis(group.redis)
            clock.stopped_at = time.time()
        elif clock.due_to_start():
            group.redis = ctx.supervisor.redis(ctx.pinning.redis_cpus, port)
            clock.ready_at = time.time()
            ctx.describe(f"outage · {group.variant} · Redis back")

    return during


def summary_tables(run_path: Path) -> list[Table]:
    """The outage figures of a run, for the end of `make soak`."""
    return csv_table(
        run_path / "raw" / NAME / "outage.csv", "Redis stopped under load, then started again",
        ("variant", "down s", "probes 503 / during", "max 503 ms", "recovery s",
         "Locust failures / requests", "RSS before -> peak MiB"),
        lambda r: (r.variant, f"{r.down_s:.2f}", f"{r.probe_503} / {r.probes_during_outage}",
                   f"{r.max_503_latency_ms:.1f}", f"{r.recovery_s:.3f}",
                   f"{r.locust_failures} / {r.locust_requests}",
                   rss_change(r.server_rss_before_bytes, r.server_rss_peak_bytes)))
