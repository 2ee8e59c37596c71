"""A real duet window: two servers on one core at once, each its own fast generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.duet import read_window
from analysis.load import LOGIN_REQUEST, read_histograms, requests
from loadtests.experiments import duet as experiment
from loadtests.runner import duet, loadgen
from loadtests.runner.context import Pinning
from loadtests.runner.processes import Supervisor


def test_the_control_runs_its_rounds_of_windows_and_a_pair_one() -> None:
    spec = experiment.Section(flat_windows=3, rate_windows=2, control_rounds=3)
    control = experiment.DuetPair("session-memory", "session-memory", experiment.AA)
    pair = experiment.DuetPair("session-memory", "jwt-hs256", experiment.DECLARED)
    assert experiment.windows(spec, pair) == [("flat", 0), ("flat", 1), ("flat", 2),
                                              ("rate", 0), ("rate", 1)]
    found = experiment.windows(spec, control)
    assert [p for p, _ in found].count("flat") == 9 and [p for p, _ in found].count("rate") == 6
    assert len(set(found)) == len(found)


@pytest.mark.slow
def test_two_servers_on_one_core_at_once(tmp_path: Path) -> None:
    pinning = Pinning.for_this_machine()
    supervisor = Supervisor(tmp_path)
    try:
        servers = [supervisor.server("session-memory", None, pinning.server_cpus,
                                     extra=("--users", "20")) for _ in range(2)]
        sides = []
        for role, server in zip(duet.ROLES, servers, strict=True):
            path = tmp_path / f"{role}.txt"
            loadgen.write_credentials(server.url, "session-memory", range(1, 21), path)
            sides.append(duet.Side(role, "session-memory", server.port, server.child.pid,
                                   None, path))
        flat = duet.run_window(supervisor, (sides[0], sides[1]),
                               duet.Load("flat", 0.0, 8, 0.6, 0.2), tmp_path / "flat",
                               pinning.generator_cpus, "a", {"pair": "aa"})
        rated = duet.run_window(supervisor, (sides[0], sides[1]),
                                duet.Load("rate", 200.0, 8, 0.6, 0.2), tmp_path / "rate",
                                pinning.generator_cpus, "b", {"pair": "aa"})
        # The population's windows: logins beside the reads, each side's histograms kept.
        churned = duet.run_window(
            supervisor, (sides[0], sides[1]),
            duet.Load("rate", 200.0, 8, 0.6, 0.2, logins=loadgen.Logins(4, 20), latency=True),
            tmp_path / "churn", pinning.generator_cpus, "a", {"pair": "aa"})
    finally:
        supervisor.stop_all()
    assert flat["status"] == rated["status"] == "ok"
    # The two windows start together: within a few milliseconds of each other.
    figures = read_window(tmp_path / "flat")
    assert abs(figures["offset_ms"]) < 5
    assert figures["a_served"] > 100 and figures["b_served"] > 100
    if not pinning.shared:  # two servers flat out on one core: it is busy, and split
        assert figures["core_busy"] > 0.8
        assert 0.5 < figures["a_cpu_s"] / figures["b_cpu_s"] < 2
    # At a fixed rate the second generator starts half a period later, and both serve it.
    assert rated["sides"]["a"]["start_offset_s"] == pytest.approx(0.5 / 200)
    assert rated["sides"]["b"]["start_offset_s"] == 0.0
    at_rate = read_window(tmp_path / "rate")
    assert 100 <= at_rate["a_served"] <= 130 and 100 <= at_rate["b_served"] <= 130
    assert at_rate["a_cpu_us_per_request"] > 0
    assert not list(tmp_path.glob("*/*_loadgen_requests.txt"))  # only the counts are kept
    assert not list((tmp_path / "rate").glob("*/loadgen_hdr.json"))
    # Each server's collector figures before and after every window.
    assert {"gc_full_pauses", "gc_pauses"} <= set(rated["sides"]["a"]["gc_after"])
    assert churned["status"] == "ok" and churned["login_every"] == 4
    for role in duet.ROLES:
        decoded = read_histograms(tmp_path / "churn" / role / "loadgen_hdr.json")
        logins = decoded[(LOGIN_REQUEST, "latency")]
        reads = requests(decoded)
        assert logins is not None and reads is not None
        # One request in four a login: about 30 of the 120 due in the window.
        assert 20 <= logins.get_total_count() <= 40
        assert 80 <= reads.get_total_count() <= 100
