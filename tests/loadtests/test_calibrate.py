"""`make calibrate`: the capacity search's logic, then a small real calibration whose
capacities the next bench run takes its rates from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.experiments.calibrate import Section as Calibrate
from loadtests.experiments.calibrate import Step, search_capacity, targets
from loadtests.runner.processes import REPO_ROOT

# Real processes for seconds at a time: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def fake_server(capacity: float, limit: str = "server") -> tuple[list[float], object]:
    """Steps that pass up to `capacity` and miss above it, as a saturated server would."""
    asked: list[float] = []

    def step(rate: float) -> Step:
        asked.append(rate)
        passed = rate <= capacity
        server = 95.0 if not passed and limit == "server" else 40.0
        generator = 95.0 if not passed and limit == "generator" else 40.0
        why = "" if passed else "p99 over the bound" if limit == "latency" else \
            "rate not reached"
        return Step(rate, rate if passed else capacity, 2.0 if passed else 80.0, 0, server,
                    generator, 100.0, passed, why)

    return asked, step


@pytest.mark.parametrize(("server", "generator", "errors", "why", "limit"), [
    (95.0, 40.0, 0, "rate not reached", "server"),        # the server's core was full
    (90.0, 79.9, 0, "p99 over the bound", "server"),      # both thresholds just met
    (95.0, 85.0, 0, "rate not reached", "generator"),     # both busy: not the server's limit
    (60.0, 98.0, 0, "rate not reached", "generator"),     # the generator's core was full
    (40.0, 40.0, 0, "p99 over the bound", "latency"),     # neither core busy: queueing
    (40.0, 40.0, 0, "rate not reached", "undetermined"),  # neither busy, rate missed
    (99.0, 10.0, 3, "errors", "errors"),                  # errors first, whatever the CPU
])
def test_limited_by_reads_both_cores(server: float, generator: float, errors: int, why: str,
                                     limit: str) -> None:
    step = Step(1000, 900, 30.0, errors, server, generator, 100.0, False, why)
    assert step.limited_by() == limit


def test_search_steps_up_then_bisects_to_the_last_passing_rate() -> None:
    asked, step = fake_server(1000)
    found = search_capacity(step, Calibrate(start_rate=400, growth=1.5, max_rate=5000,
                                            refine_steps=2))
    # Each miss is tried twice before it counts.
    assert asked == [400, 600, 900, 1350, 1350, 1120, 1120, 1010, 1010]
    assert found["capacity_rps"] == 900  # 1010 missed: the highest rate that passed
    assert found["limited_by"] == "server"


def test_between_runs_once_after_the_climb_and_before_the_bisection() -> None:
    asked, step = fake_server(1000)
    found = search_capacity(step, Calibrate(start_rate=400, growth=1.5, max_rate=5000,
                                            refine_steps=2),
                            between=lambda: asked.append(-1))
    assert asked == [400, 600, 900, 1350, 1350, -1, 1120, 1120, 1010, 1010]
    assert found["capacity_rps"] == 900


def test_a_miss_on_the_latency_bound_with_cpu_to_spare_is_latency() -> None:
    _, step = fake_server(700, limit="latency")
    found = search_capacity(step, Calibrate(start_rate=400, growth=2, refine_steps=0))
    assert found["capacity_rps"] == 400 and found["limited_by"] == "latency"


def test_a_miss_that_passes_when_tried_again_is_a_pass() -> None:
    tries: dict[float, int] = {}

    def flaky(rate: float) -> Step:
        tries[rate] = tries.get(rate, 0) + 1
        passed = rate <= 800 or (rate == 1600 and tries[rate] == 2)
        return Step(rate, rate, 2.0, 0, 50.0, 50.0, 100.0, passed,
                    "" if passed else "rate not reached")

    found = search_capacity(flaky, Calibrate(start_rate=400, growth=2, max_rate=1600))
    assert found["capacity_rps"] == 1600 and found["limited_by"] == "max_rate"
    assert [s["rate"] for s in found["steps"]] == [400, 800, 1600, 1600]


def test_search_stops_at_max_rate_and_says_so() -> None:
    asked, step = fake_server(10_000)
    found = search_capacity(step, Calibrate(start_rate=500, growth=2, max_rate=1500))
    assert asked == [500, 1000, 1500]
    assert found["capacity_rps"] == 1500 and found["limited_by"] == "max_rate"


def test_a_first_step_that_misses_bisects_down_and_names_the_generator() -> None:
    asked, step = fake_server(150, limit="generator")
    found = search_capacity(step, Calibrate(start_rate=400, refine_steps=3))
    assert asked == [400, 400, 200, 200, 100, 150]
    assert found["capacity_rps"] == 150 and found["limited_by"] == "generator"


def test_targets_compare_capacities_and_check_them_against_the_duet() -> None:
    duet = {"ratio": 0.40, "ratio_low": 0.39, "ratio_high": 0.41, "n": 8,
            "control_holds": True}
    variants = {
        "none": {"auth_us_p50": 0.2, "capacity_rps": 10_000},
        "jwt-hs256": {"auth_us_p50": 30.0, "capacity_rps": 4500, "duet_vs_none": duet},
        "session-memory": {"auth_us_p50": 6.0, "capacity_rps": 9000},
        "session-cookie": {"auth_us_p50": 20.0, "capacity_rps": 6000,
                           "duet_vs_none": {**duet, "ratio": 0.45}},
        "jwt-rs256": {"auth_us_p50": 40.0, "capacity_rps": 2000,
                      "duet_vs_none": {**duet, "ratio": 0.10, "control_holds": False}},
    }
    checks = {(c["variant"], c["what"]): c for c in
              targets(variants, {"PyJWT decode HS256": 25.0, "Fernet decrypt": 16.0})}
    # Shown without a target: no verdict on it.
    cookie = checks[("session-cookie", "auth p50 / Fernet decrypt")]
    assert cookie["value"] == 1.25 and cookie["target"] is None and cookie["met"] is None
    assert checks[("jwt-hs256", "auth p50 / PyJWT decode HS256")]["value"] == 1.2
    assert checks[("jwt-hs256", "auth p50 / PyJWT decode HS256")]["met"] is True
    assert checks[("session-memory", "auth p50 (us)")]["met"] is False
    capacity = checks[("jwt-hs256", "capacity / none")]
    assert capacity["value"] == 0.45 and capacity["met"] is False
    # 0.45 of none's capacity against the duet's 0.40: 1.125, within 15%; the cookie's
    # 0.60 against 0.45 (1.33) is not; where the A/A control strayed, nothing is checked.
    what = "(capacity / none's) / the duet's ratio"
    agrees = checks[("jwt-hs256", what)]
    assert agrees["value"] == 1.125 and agrees["met"] is True and agrees["target"] == "1 ± 0.15"
    assert checks[("session-cookie", what)]["met"] is False
    assert checks[("jwt-rs256", what)]["met"] is None
    assert ("session-memory", what) not in checks and ("none", what) not in checks


CALIBRATE = """
name = "tinycal"
variants = ["none", "jwt-hs256"]
experiments = ["calibrate"]
repetitions = 1
warmup_s = 0.5
login_users = 100
[calibrate]
p99_ms = 50
start_rate = 150
growth = 2
max_rate = 300
refine_steps = 1
users = 3
duration_s = 1
probe_requests = 300
closed_loop_s = 1
duet_blocks = 1
duet_windows = 2
duet_window_s = 0.5
"""

FROM_CAPACITY = """
name = "fromcapacity"
variants = ["jwt-hs256"]
experiments = ["latency"]
repetitions = 1
warmup_s = 0.5
login_users = 100
[latency]
fractions = [0.5]
duration_s = 1
saturation_s = 1
knee = [0.5]
knee_s = 1
knee_requests = 100
connections = 8
"""


Calibrated = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Calibrated:
    results = tmp_path_factory.mktemp("results")
    profile = results / "tinycal.toml"
    profile.write_text(CALIBRATE)
    done = subprocess.run([sys.executable, "-m", "loadtests.calibrate", "--profile",
                           str(profile), "--results", str(results)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    return results, done


def test_calibration_measures_auth_cost_capacity_and_primitives(calibrated: Calibrated) -> None:
    results, done = calibrated
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "capacity: p99 <= 50 ms, no errors" in done.stdout
    assert "auth p50 / PyJWT decode HS256" in done.stdout
    run = (results / "latest").resolve()
    calibration = json.loads((run / "calibration.json").read_text())
    assert (results / "calibration.json").read_text() == (run / "calibration.json").read_text()
    none, jwt = calibration["variants"]["none"], calibration["variants"]["jwt-hs256"]
    # Verifying an HMAC-signed token costs far more than the control's nothing.
    assert jwt["auth_us_p50"] > 10 * max(none["auth_us_p50"], 0.1)
    for entry in (none, jwt):
        assert [s["rate"] for s in entry["steps"]] == [150, 300]
        assert entry["capacity_rps"] == 300 and entry["limited_by"] == "max_rate"
        assert all(s["errors"] == 0 and s["achieved_rps"] > 0.9 * s["rate"]
                   for s in entry["steps"])
        # CPU at the capacity, from the step that set it; the closed-loop cross-check.
        assert entry["server_cpu_us_per_request"] > 0 and entry["server_cpu_percent"] > 0
        assert entry["closed_loop_rps"] > 300
        # One window flat out, where the search starts from.
        assert [run["rate"] for run in entry["closed_loop"]] == [0]
        # The capacity relative to the control's, from a duet beside it (none against
        # itself is the A/A control).
        # Both windows measured; a window is left out where the two servers did not keep
        # the core 90% busy (something else held it a moment), so one may be.
        duet = entry["duet_vs_none"]
        assert duet["windows"] == 2 and duet["n"] + duet["left_out"] == 2
        assert duet["n"] >= 1 and duet["ratio"] > 0
        # Every request of the fast generator carried one of the users' real credentials.
        assert entry["credentials"] == (1 if entry is none else 100)
    assert calibration["primitives_us"]["PyJWT decode HS256"] > 0
    assert calibration["pinning"]["server_cpus"] != calibration["pinning"]["generator_cpus"]
    whats = {(c["variant"], c["what"]) for c in calibration["targets"]}
    assert ("jwt-hs256", "auth p50 / PyJWT decode HS256") in whats
    assert ("jwt-hs256", "(capacity / none's) / the duet's ratio") in whats
    assert {p.name for p in run.glob("raw/calibrate/duet/*")} == {"none__none",
                                                                "none__jwt-hs256"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["rates_from"]["calibration"] == "calibration.json"


def test_bench_takes_its_rates_from_the_calibration(calibrated: Calibrated) -> None:
    results, done = calibrated
    assert done.returncode == 0
    profile = results / "fromcapacity.toml"
    profile.write_text(FROM_CAPACITY)
    ran = subprocess.run([sys.executable, "-m", "loadtests.bench", "--profile", str(profile),
                          "--results", str(results), "--no-report"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:]
    run = (results / "latest").resolve()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["rates_from"]["calibration"] == str(results / "calibration.json")
    record = json.loads((run / "raw/latency/jwt-hs256/r150-rep1/measurement.json").read_text())
    assert record["target_rps"] == 150  # 0.5 x the capacity found (300)
    knee = json.loads((run / "raw/latency/jwt-hs256/k0.5-rep1/measurement.json").read_text())
    assert knee["capacity_from"] == "calibration" and knee["target_rps"] == 150
    # The run keeps the calibration it used, for its report and for whoever reads it later.
    assert (run / "calibration.json").read_text() == (results / "calibration.json").read_text()
    # Told not to, it takes the capacity it measures flat out in this run.
    ran = subprocess.run([sys.executable, "-m", "loadtests.bench", "--profile", str(profile),
                          "--results", str(results), "--no-report", "--calibration", "none"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0
    run = (results / "latest").resolve()
    knee = json.loads((run / "raw/latency/jwt-hs256/k0.5-rep1/measurement.json").read_text())
    assert knee["capacity_from"] == "saturation" and knee["target_rps"] > 300
    assert not (run / "calibration.json").exists()
