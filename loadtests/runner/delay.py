"""Redis across a network, on one machine: the delaying forwarder (delayproxy.c) between a
server and its Redis, and the round trip it adds, measured through it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

from loadtests.runner import native
from loadtests.runner.processes import (
    Child,
    ProcessError,
    RedisHandle,
    Supervisor,
    free_port,
    wait_until,
)

SOURCE = Path(__file__).with_name("delayproxy.c")
NAME = "authscale-delay"


@dataclass(frozen=True)
class Delayed:
    """A forwarder to a Redis, holding each direction half of `rtt_ms`."""

    rtt_ms: float
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start(supervisor: Supervisor, target: RedisHandle, rtt_ms: float, log_dir: Path,
          cpus: Iterable[int]) -> Delayed:
    """A forwarder on a free loopback port to `target`, ready when a PING gets through."""
    binary = native.build(SOURCE, NAME)
    port = free_port()
    child = supervisor.spawn(f"delay {rtt_ms:g} ms", [
        str(binary), "--listen", str(port), "--to", str(target.port),
        "--rtt-us", f"{rtt_ms * 1000:g}"], log_dir / f"delay-{port}.log", cpus)
    client = redis.Redis(port=port, socket_timeout=2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers, child, 10, NAME)
    finally:
        client.close()
    return Delayed(rtt_ms, port, child)


def round_trip_ms(url: str, pings: int = 300) -> dict[str, float]:
    """Sequential PINGs with redis-py, one connection: the median and 99th percentile of
    their round trips, in ms."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for _ in range(20):
            client.ping()
        times = []
        for _ in range(pings):
            start = time.perf_counter()
            client.ping()
            times.append((time.perf_counter() - start) * 1000)
    except redis.RedisError as exc:
        raise ProcessError(f"PING through {url} failed: {exc}") from exc
    finally:
        client.close()
    times.sort()
    return {"median_ms": statistics.median(times),
            "p99_ms": times[min(len(times) - 1, int(0.99 * len(times)))]}
