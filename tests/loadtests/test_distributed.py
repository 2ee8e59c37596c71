"""Past one machine: the compose file is the runner's own commands, and Locust workers merge."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests.compose import COMPOSE_FILE, compose_document, render, service_name
from loadtests.experiments import load_profile
from loadtests.runner.processes import REPO_ROOT, ServerHandle, server_command, start_server
from servers.variants.registry import NAMES as VARIANTS
from servers.variants.registry import variant as variant_spec
from tests.loadtests.conftest import run_locust

# Real processes for seconds at a time: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def test_compose_file_is_up_to_date() -> None:
    assert COMPOSE_FILE.read_text() == render(), "run: python -m loadtests.compose"


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_servers_run_the_runners_command(variant: str) -> None:
    service = compose_document()["services"][service_name(variant)]
    users = str(load_profile("quick").login_users)
    redis_url = "redis://redis:6379/0" if variant_spec(variant).needs_redis else None
    native = server_command(variant, 8000, redis_url, extra=("--users", users),
                            host="0.0.0.0", python="python")
    assert service["command"] == native
    # The runner starts its servers with the same flags, bar host, port and interpreter.
    assert native[1:5] == ["-m", "servers", "--auth", variant]
    assert ("depends_on" in service) == (variant_spec(variant).needs_redis)


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose is not installed (.ci/run installs it)")
def test_compose_file_validates() -> None:
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def control() -> Iterator[ServerHandle]:
    server = start_server("none", extra=("--users", "1000"))
    try:
        yield server
    finally:
        server.stop()


def served(url: str) -> int:
    """Requests the server counted, all routes but /metrics itself."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    family = next(f for f in text_string_to_metric_families(text)
                  if f.name == "authscale_requests")
    return int(sum(s.value for s in family.samples if s.name.endswith("_total")
                   and s.labels["route"] != "/metrics"))


def test_two_local_workers_merge_to_what_the_server_served(control: ServerHandle,
                                                           tmp_path: Path) -> None:
    before = served(control.url)
    run = run_locust(control.url, "none", tmp_path, "browse", users=6, processes=2,
                     extra=["--login-users", "1000"])
    assert run.returncode == 0, run.output[-3000:]
    recorded = sum(entry["count"] for entry in run.hdr().values())
    # /healthz probes at start: one per worker process.
    assert recorded == served(control.url) - before - 2
    assert recorded == sum(e["num_requests"] for e in run.stats().values())
    workers = {line.split(",")[1] for line in
               Path(f"{run.prefix}_generator_cpu.csv").read_text().splitlines()[1:]}
    assert len(workers - {"master"}) == 2
