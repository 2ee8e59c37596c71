"""Once a second during a measured phase: server RSS and CPU, Redis memory, keys and CPU, the
server's own /metrics, and the load generator's CPU, into one CSV that pandas reads directly.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import redis
from prometheus_client.parser import text_string_to_metric_families

from loadtests.atomic import write_csv

if TYPE_CHECKING:
    from loadtests.runner.loadgen import LoadResult

COLUMNS = ("timestamp", "variant", "server_pid", "server_rss_bytes", "server_cpu_seconds",
           "server_cpu_percent", "server_core_steal_seconds", "redis_used_memory_bytes",
           "redis_keys", "redis_cpu_seconds", "live_sessions",
           "auth_count", "auth_sum_seconds", "gc_pauses", "gc_pause_seconds",
           "gc_full_pauses", "gc_full_pause_seconds", "gc_longest_pause_seconds",
           "gc_service_longest_seconds", "generator_cpu_percent")


def scrape_metrics(base_url: str, timeout: float = 1.0) -> dict[str, float]:
    """The figures the runner needs from a server's /metrics."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=timeout) as answer:
        text = answer.read().decode()
    figures: dict[str, float] = {"auth_count": 0.0, "auth_sum_seconds": 0.0,
                                 "gc_pauses": 0.0, "gc_pause_seconds": 0.0,
                                 "gc_longest_pause_seconds": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            full = sample.labels.get("generation") == "2"
            if sample.name == "authscale_gc_pause_seconds_count":
                figures["gc_pauses"] += sample.value
                if full:
                    figures["gc_full_pauses"] = sample.value
            elif sample.name == "authscale_gc_pause_seconds_sum":
                figures["gc_pause_seconds"] += sample.value
                if full:
                    figures["gc_full_pause_seconds"] = sample.value
            elif sample.name == "authscale_gc_pause_longest_seconds":
                figures["gc_longest_pause_seconds"] = max(figures["gc_longest_pause_seconds"],
                                                          sample.value)
            elif sample.name == "authscale_gc_pause_longest_in_service_seconds":
                figures["gc_service_longest_seconds"] = max(
                    figures.get("gc_service_longest_seconds", 0.0), sample.value)
            elif sample.name == "authscale_auth_seconds_count":
                figures["auth_count"] += sample.value
            elif sample.name == "authscale_auth_seconds_sum":
                figures["auth_sum_seconds"] += sample.value
            elif sample.name == "authscale_live_sessions":
                figures["live_sessions"] = sample.value
    return figures


def redis_cpu_seconds(info: dict[str, Any]) -> float:
    """The CPU time Redis's own process has used, from its INFO: user plus system."""
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_figures(client: redis.Redis) -> dict[str, float]:
    """Redis `used_memory`, its number of keys (all databases) and the CPU time it has
    used."""
    info: dict[str, Any] = client.info()
    keys = sum(v.get("keys", 0) for k, v in info.items() if k.startswith("db") and
               isinstance(v, dict))
    return {"redis_used_memory_bytes": int(info["used_memory"]), "redis_keys": int(keys),
            "redis_cpu_seconds": redis_cpu_seconds(info)}


@dataclass(frozen=True)
class CpuUse:
    """CPU time spent during one load run: the server's, Redis's, the generator's."""

    server_percent: float
    server_us_per_request: float
    redis_us_per_request: float
    generator_percent: float


class CpuMeter:
    """CPU time of a server process (and its Redis, if given) across one load run, read
    exactly before and after it; the fast generator reports its own."""

    def __init__(self, server_pid: int, redis_client: redis.Redis | None = None) -> None:
        self.server = psutil.Process(server_pid)
        self.redis = redis_client

    def _redis_cpu(self) -> float:
        return redis_cpu_seconds(self.redis.info("cpu")) if self.redis is not None \
            else math.nan

    def __enter__(self) -> CpuMeter:
        times = self.server.cpu_times()
        self.server_cpu, self.redis_cpu = times.user + times.system, self._redis_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        times = self.server.cpu_times()
        self.server_cpu = times.user + times.system - self.server_cpu
        self.redis_cpu = self._redis_cpu() - self.redis_cpu

    def use(self, result: LoadResult, seconds: float) -> CpuUse:
        """Per request over every request the run sent, and as a share of the `seconds` the
        generator ran (warm-up included, as the CPU times are)."""
        sent = max(1, result.sent)
        return CpuUse(self.server_cpu * 100 / seconds, self.server_cpu * 1e6 / sent,
                      self.redis_cpu * 1e6 / sent, result.cpu_seconds * 100 / seconds)


class Sampler:
    """A background thread sampling one server (and its Redis) until stopped."""

    def __init__(self, path: Path, variant: str, server_pid: int, server_url: str,
                 redis_client: redis.Redis | None, generator_pid: int | None = None,
                 interval: float = 1.0) -> None:
        self.path = path
        self.variant = variant
        self.server_url = server_url
        self.redis_client = redis_client
        self.interval = interval
        self.server = psutil.Process(server_pid)
        self.server_cores = sorted(self.server.cpu_affinity() or [])
        self.generator = psutil.Process(generator_pid) if generator_pid else None
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{variant}", daemon=True)

    def __enter__(self) -> Sampler:
        self.server.cpu_percent(None)
        self._generator_cpu()  # starts psutil's per-process CPU counters
        self.sample()  # the opening figures: a window starting now is bracketed
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the closing figures
        self.write()

    def _generator_cpu(self) -> float | None:
        if self.generator is None:
            return None
        try:
            procs = [self.generator, *self.generator.children(recursive=True)]
            return sum(p.cpu_percent(None) for p in procs)
        except psutil.Error:
            return None

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"timestamp": time.time(), "variant": self.variant,
                               "server_pid": self.server.pid}
        # The hypervisor's share of the server's core (steal): a slowed core, not a slow
        # server, when a measurement's CPU per request jumps with no GC to explain it.
        cores = psutil.cpu_times(percpu=True)
        row["server_core_steal_seconds"] = sum(getattr(cores[c], "steal", 0.0)
                                               for c in self.server_cores if c < len(cores))
        try:
            cpu = self.server.cpu_times()
            row["server_rss_bytes"] = self.server.memory_info().rss
            row["server_cpu_seconds"] = cpu.user + cpu.system
            row["server_cpu_percent"] = self.server.cpu_percent(None)
        except psutil.Error:
            pass  # the server is gone: the gap in the CSV shows it
        if self.redis_client is not None:
            with contextlib.suppress(redis.RedisError):
                row.update(redis_figures(self.redis_client))
        # A server without our /metrics (nginx, the generator's floor) gives none.
        with contextlib.suppress(OSError, ValueError):
            row.update(scrape_metrics(self.server_url))
        row["generator_cpu_percent"] = self._generator_cpu()
        self.rows.append(row)
        return row

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def write(self) -> None:
        write_csv(self.path, COLUMNS, self.rows)
