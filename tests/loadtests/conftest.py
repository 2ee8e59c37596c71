"""Real servers and real Locust runs for the load-side tests."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from loadtests.runner.processes import (
    RedisHandle,
    ServerHandle,
    locust_command,
    start_server,
)
from loadtests.swarm.credentials import user_class_for

SHARED_HS256_KEY = "authscale-test-shared-key-0123456789abcdef"


@dataclass
class LocustRun:
    prefix: Path
    returncode: int
    output: str

    def stats(self) -> dict[str, dict]:
        """Locust's final counts per "METHOD name" (its JSON, written after the run)."""
        entries = json.loads(Path(f"{self.prefix}_final.json").read_text())
        return {f"{e['method']} {e['name']}": e for e in entries}


    def hdr(self) -> dict[str, dict]:
        return json.loads(Path(f"{self.prefix}_hdr.json").read_text())["histograms"]

    def histogram(self, name: str, kind: str = "latency") -> HdrHistogram:
        return HdrHistogram.decode(self.hdr()[name][kind].encode())

    def revocations(self) -> list[dict[str, str]]:
        with open(f"{self.prefix}_revocation.csv", newline="") as fh:
            return list(csv.DictReader(fh))

    def failures(self) -> int:
        return sum(e["num_failures"] for e in self.stats().values())


def run_locust(host: str, variant: str, tmp_path: Path, scenario: str, seconds: int = 3,
               users: int = 5, extra: list[str] | None = None, processes: int = 1) -> LocustRun:
    prefix = tmp_path / f"{scenario}-{variant}"
    argv = locust_command(host, scenario=scenario, users=users, duration=seconds,
                          csv_prefix=prefix, user_class=user_class_for(variant),
                          processes=processes, extra=extra or [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 90)
    return LocustRun(prefix, done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def servers(redis_server: RedisHandle, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, ServerHandle]]:
    """session-redis, session-memory, and two jwt-hs256 replicas sharing their key."""
    log_dir = tmp_path_factory.mktemp("server-logs")
    env = {**__import__("os").environ, "AUTHSCALE_JWT_KEY": SHARED_HS256_KEY}
    started: dict[str, ServerHandle] = {}
    try:
        started["session-redis"] = start_server("session-redis", redis_url=redis_server.url,
                                                log_dir=log_dir)
        started["session-memory"] = start_server("session-memory", log_dir=log_dir)
        started["jwt-hs256"] = start_server("jwt-hs256", log_dir=log_dir, env=env)
        started["jwt-hs256 replica"] = start_server("jwt-hs256", log_dir=log_dir, env=env)
        started["session-memory replica"] = start_server("session-memory", log_dir=log_dir)
        yield started
    finally:
        for server in started.values():
            server.stop()
