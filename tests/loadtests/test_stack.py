"""The compose stack's own logic; the stack itself runs in CI (`make bench-compose`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from loadtests.compose import compose_document
from loadtests.containers import check_pinning
from loadtests.images import StackError, debian_mirror
from loadtests.runner.processes import ProcessError
from loadtests.stack import check_limits, overhead, report


def test_the_mirror_is_the_one_apt_uses(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
                      "Types: deb\nURIs: http://mirror.example/debian-security\n")
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert debian_mirror([deb822]) == "http://mirror.example/debian"
    assert debian_mirror([one_line]) == "http://other.example/debian"
    assert debian_mirror([tmp_path / "absent"]) == "http://deb.debian.org/debian"


def test_limits_read_back_must_be_the_compose_files() -> None:
    good = {"cpus": 1.0, "cpuset": "0", "memory_bytes": 4 * 2**30}
    check_limits("jwt-hs256", good, {0})
    for wrong, says in (({"cpus": None}, "not 1 CPU and 4 GiB"),
                        ({"memory_bytes": 2**30}, "not 1 CPU and 4 GiB"),
                        ({"cpuset": "1"}, "pinned to CPUs '1', not [0]")):
        with pytest.raises(StackError, match=re.escape(says)):
            check_limits("jwt-hs256", {**good, **wrong}, {0})


def test_the_compose_file_swaps_images_and_pins_cores_as_native_runs_do() -> None:
    services = compose_document()["services"]
    assert services["redis"]["image"] == "${AUTHSCALE_REDIS_IMAGE:-redis:7.0-alpine}"
    assert "--protected-mode" in services["redis"]["command"]
    server = services["server-jwt-hs256"]
    assert server["build"]["args"]["PYTHON_IMAGE"].startswith("${AUTHSCALE_PYTHON_IMAGE:-")
    assert server["cpuset"] == "0" and services["redis"]["cpuset"] == "1"
    assert server["ports"] == ["127.0.0.1::8000"]  # loopback only


def test_the_report_says_what_ran_and_what_was_left() -> None:
    rows = [{"where": "container", "pair": 1, "closed_rps": 3000.0, "closed_p99_ms": 30.0,
             "fixed_p50_ms": 0.5, "fixed_p99_ms": 2.0, "fixed_cpu_us_per_request": 250.0},
            {"where": "native", "pair": 1, "closed_rps": 2500.0, "closed_p99_ms": 20.0,
             "fixed_p50_ms": 0.4, "fixed_p99_ms": 2.5, "fixed_cpu_us_per_request": 200.0}]
    manifest = {"run_id": "x-compose", "status": "complete", "seconds": 200.0,
                "engine": {"name": "podman", "version": "4.3.1", "compose": "docker-compose"},
                "images": {"python": "localhost/b", "redis": "localhost/b", "why": "built",
                           "ids": {"app": "sha256:1"}},
                "pinning": {"server_cpus": [0], "generator_cpus": [1]},
                "services": {"jwt-hs256": {"limits": {"cpus": 1.0}, "verified": True}},
                "comparison": {"variant": "jwt-hs256", "rows": rows,
                               "overhead": overhead(rows)},
                "distributed": {"workers": 1, "users": 4, "seconds": 8.0, "requests": 4990,
                                "failures": 0, "rps": 853.2, "target": "http://s:8000"},
                "profile_run": {"profile": "compose", "run_id": "y-compose", "exit_code": 0},
                "left_behind": []}
    text = report(manifest)
    assert "master and 1 worker, 4 users against http://s:8000 for 8 s" in text
    assert "4,990 requests, 0 failures, 853 req/s" in text
    assert "podman 4.3.1" in text
    assert "| container | 1 | 3,000 | 30.00 | 0.50 | 2.00 | 250 |" in text
    assert ("Container / native, median of the pairs [lowest, highest]: flat out req/s "
            "1.20x [1.20, 1.20]; p50 at 1,000 req/s 1.25x [1.25, 1.25]; p99 at 1,000 req/s "
            "0.80x [0.80, 0.80]; server CPU per request 1.25x [1.25, 1.25].") in text
    assert "run `y-compose` (results/y-compose/report.md), exit code 0" in text
    assert text.rstrip().endswith("Left behind after `down`: nothing")


def test_the_overhead_is_the_median_of_paired_ratios() -> None:
    """Each pair's container / native ratio, then their median and range; a pair missing
    a side, or a native figure of zero, gives no ratio."""
    def row(where: str, pair: int, rps: float) -> dict[str, Any]:
        return {"where": where, "pair": pair, "closed_rps": rps, "fixed_p50_ms": 0.5,
                "fixed_p99_ms": 2.0, "fixed_cpu_us_per_request": 0.0}
    rows = [row("container", 1, 900), row("native", 1, 1000), row("container", 2, 1100),
            row("native", 2, 1000), row("container", 3, 1000), row("native", 3, 800),
            row("container", 4, 5000)]
    found = overhead(rows)
    assert found["closed_rps"] == {"median": 1.1, "low": 0.9, "high": 1.25, "pairs": 3}
    assert found["fixed_p99_ms"]["median"] == 1.0
    assert "fixed_cpu_us_per_request" not in found


def test_containers_refuse_cores_other_than_the_runners() -> None:
    check_pinning({0}, {1})  # the compose file's: servers on CPU 0, Redis on CPU 1
    with pytest.raises(ProcessError, match="pins the servers to CPU 0, the runner to CPU 1"):
        check_pinning({1}, {1})
    with pytest.raises(ProcessError, match="pins the Redis to CPU 1, the runner to CPU 0,1"):
        check_pinning({0}, {0, 1})
