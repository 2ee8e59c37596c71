"""The fault experiments' own instruments: a store outage timed by a probe, and the
figures of an overload.

Outage: while Locust loads a Redis-backed variant, the runner stops its Redis and starts it
again on the same port. A probe beside the load sends one request every 50 ms and records
what the server answered and how long it took, so the outage window, every 503's latency
and the recovery time are measured by the runner, not inferred from Locust's per-second
counts.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from analysis.load import Measurement
from loadtests.atomic import write_csv
from loadtests.verify import Credential, log_in

MIB = 1 << 20
PROBE_COLUMNS = ("timestamp", "status", "latency_ms")
OUTAGE_COLUMNS = ("variant", "redis_stopped_at", "redis_ready_at", "down_s", "probes",
                  "probes_during_outage", "probe_503", "probe_other_errors",
                  "max_503_latency_ms", "p99_outage_latency_ms", "recovery_s",
                  "locust_requests", "locust_failures", "server_rss_before_bytes",
                  "server_rss_peak_bytes", "server_alive_after")
OVERLOAD_COLUMNS = ("variant", "capacity_rps", "offered_rps", "users", "achieved_rps",
                    "requests", "failures", "server_rss_before_bytes", "server_rss_peak_bytes",
                    "p99_before_ms", "p99_overload_ms", "p99_after_ms", "server_alive_after")


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
                    self._credential = log_in(self.url, self.variant)
                conn.request("GET", "/me", headers=self._credential.headers())
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


def outage_row(variant: str, clock: OutageClock, probe_rows: list[dict[str, Any]],
               record: dict[str, Any] | None, samples: pd.DataFrame, alive: bool
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
        "variant": variant, "redis_stopped_at": round(stopped, 3),
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
        "locust_requests": (record or {}).get("requests", 0),
        "locust_failures": (record or {}).get("failures", 0),
        "server_rss_before_bytes": peak_rss(samples, before=stopped),
        "server_rss_peak_bytes": peak_rss(samples),
        "server_alive_after": alive,
    }


def peak_rss(samples: pd.DataFrame, before: float | None = None) -> int:
    """The server's highest RSS in a measurement's samples (those taken before `before`)."""
    if "server_rss_bytes" not in samples:
        return 0
    if before is not None:
        samples = samples[samples["timestamp"] < before]
    rss = samples["server_rss_bytes"].dropna()
    return int(rss.max()) if len(rss) else 0


def overload_row(variant: str, capacity: float, offered: float, users: int,
                 measured: dict[str, Measurement], run_path: Path, alive: bool
                 ) -> dict[str, Any]:
    """The overload window's throughput, errors and peak RSS; p99 before, during, after."""
    rows = {label: m.row(run_path) for label, m in measured.items()}
    heavy = rows.get("overload", {})

    def rss(label: str) -> int:
        return peak_rss(measured[label].samples) if label in measured else 0

    def p99_ms(label: str) -> float:
        return round(float(rows[label]["latency_us_p99"]) / 1000, 3) if label in rows \
            else float("nan")

    return {
        "variant": variant, "capacity_rps": capacity, "offered_rps": offered, "users": users,
        "achieved_rps": round(float(heavy.get("achieved_rps", float("nan"))), 1),
        "requests": heavy.get("requests", 0), "failures": heavy.get("failures", 0),
        "server_rss_before_bytes": rss("before"), "server_rss_peak_bytes": rss("overload"),
        "p99_before_ms": p99_ms("before"), "p99_overload_ms": p99_ms("overload"),
        "p99_after_ms": p99_ms("after"), "server_alive_after": alive,
    }


def summary_tables(run_path: Path) -> list[Table]:
    """The outage and overload figures of a run, for the end of `make soak`."""
    tables = []
    outage = run_path / "raw" / "outage" / "outage.csv"
    if outage.exists():
        frame = pd.read_csv(outage)
        table = Table(title="Redis stopped under load, then started again")
        for column in ("variant", "down s", "probes 503 / during", "max 503 ms",
                       "recovery s", "Locust failures / requests", "RSS before -> peak MiB"):
            table.add_column(column, no_wrap=column == "variant")
        for r in frame.itertuples():
            table.add_row(r.variant, f"{r.down_s:.2f}", f"{r.probe_503} / {r.probes_during_outage}",
                          f"{r.max_503_latency_ms:.1f}", f"{r.recovery_s:.3f}",
                          f"{r.locust_failures} / {r.locust_requests}",
                          f"{r.server_rss_before_bytes / MIB:.1f} -> "
                          f"{r.server_rss_peak_bytes / MIB:.1f}")
        tables.append(table)
    overload = run_path / "raw" / "overload" / "overload.csv"
    if overload.exists():
        frame = pd.read_csv(overload)
        table = Table(title="Twice the calibrated capacity")
        for column in ("variant", "capacity", "offered", "achieved", "failures / requests",
                       "p99 ms before / during / after", "RSS before -> peak MiB", "alive"):
            table.add_column(column, no_wrap=column == "variant")
        for r in frame.itertuples():
            table.add_row(r.variant, f"{r.capacity_rps:g}", f"{r.offered_rps:g}",
                          f"{r.achieved_rps:.0f}", f"{r.failures} / {r.requests}",
                          f"{r.p99_before_ms:.1f} / {r.p99_overload_ms:.1f} / "
                          f"{r.p99_after_ms:.1f}",
                          f"{r.server_rss_before_bytes / MIB:.1f} -> "
                          f"{r.server_rss_peak_bytes / MIB:.1f}", str(r.server_alive_after))
        tables.append(table)
    return tables
