"""The population experiment's own logic (its real runs are in test_bench)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from loadtests.experiments import load_profile
from loadtests.experiments.population import (
    DoesNotFit,
    arm_rate,
    bytes_per_user,
    check_fits,
    plan,
)
from loadtests.experiments.storms import Arm, matched, storm_arms, storm_at
from loadtests.experiments.users import distribution
from loadtests.runner.context import VariantFailed
from loadtests.runner.loadgen import Logins
from loadtests.runner.profile import Profile, ProfileError


def test_a_population_step_that_does_not_fit_in_memory_is_refused() -> None:
    """Before seeding, the runner checks the step fits the memory available: at first by
    a guess per where the state lives, then by what the last step measured."""
    assert bytes_per_user("process", []) == 1500.0
    assert bytes_per_user("client", []) == 0.0  # nothing kept server-side: always fits
    rows = [{"live_sessions": 1000, "server_rss_bytes": 60_000_000},
            {"live_sessions": 11_000, "server_rss_bytes": 67_000_000,
             "redis_used_memory_bytes": None}]
    assert bytes_per_user("process", rows) == pytest.approx(700 * 1.5)
    check_fits("process", 9_000_000, rows, 24 * 2**30)  # 8.8 GiB of 24: fits
    with pytest.raises(DoesNotFit, match=r"90,000,000 more live users need about 88\.0 GiB "
                                         r"\(1050 B each\), more than 80% of the 24\.0 GiB"):
        check_fits("process", 90_000_000, rows, 24 * 2**30)
    check_fits("client", 10**9, [], 2**30)


PLANNED = """
name = "planned"
variants = ["none", "session-memory", "session-redis", "jwt-hs256"]
repetitions = 1
login_users = 1000
experiments = ["population"]
[population]
sizes = [1000, 10000]
variants = ["session-memory", "session-redis", "jwt-hs256"]
windows = 3
login_share = 0.1
remedy = ["session-memory"]
storm_sizes = [10000]
"""


def planned_profile(tmp_path: Path, text: str = PLANNED) -> Profile:
    path = tmp_path / "planned.toml"
    path.write_text(text)
    return load_profile(str(path))


def test_each_step_is_a_duet_of_windows_flat_out_and_at_the_rate(tmp_path: Path) -> None:
    """Every step of every variant: `windows` windows flat out and as many at the rate,
    interleaved, their rate and length set when they run; requests over all N seeded
    sessions, N users' minted credentials, or the logged-in users."""
    ctx = SimpleNamespace(profile=planned_profile(tmp_path))
    planned = plan(ctx)  # type: ignore[arg-type]
    windows = [p for p in planned if p.info["phase"] != "storm"]
    for variant in ("session-memory", "session-redis", "jwt-hs256"):
        labels = [p.label for p in windows if p.variant == variant]
        assert labels == [f"n{size}-{phase}-w{k}" for size in (1000, 10000) for k in range(3)
                          for phase in ("flat", "rate")]
    assert all(p.generator == "loadgen" and p.rate == 0 for p in windows)
    assert {p.info["population"] for p in windows} == {1000, 10000}
    assert distribution("session-memory") == distribution("session-redis") == "seeded"
    assert distribution("session-cookie") == distribution("jwt-hs256-revocable") == "minted"
    assert distribution("none") == distribution("jwt-eddsa") == "logged-in"


def test_a_login_storm_for_every_arm_and_the_same_storm_for_the_remedy_and_control(
        tmp_path: Path) -> None:
    """At the storm's sizes every variant's grown server meets a storm of its own (logins
    half the requests, at storm_load of its capacity per core there, until storm_growth of
    the size have logged in or storm_max_s ran); the remedy and the control (none, in the
    profile's variants) meet the in-process store's storm as it ran."""
    ctx = SimpleNamespace(profile=planned_profile(tmp_path))
    spec = ctx.profile.population
    storms = [p for p in plan(ctx) if p.info["phase"] == "storm"]  # type: ignore[arg-type]
    assert [(p.variant, p.label) for p in storms] == [
        ("session-memory", "n10000-storm"), ("session-redis", "n10000-storm"),
        ("jwt-hs256", "n10000-storm"), ("session-memory", "freeze-n10000-storm"),
        ("none", "n10000-storm")]
    assert storm_arms(ctx) == [Arm("session-memory", "gc.freeze"), Arm("none")]  # type: ignore[arg-type]
    planned = storms[0]
    assert planned.logins == Logins(2, ctx.profile.login_users)
    # Its rate and length come from the capacity per core at that size: a quarter of
    # 12,345 req/s, half of it logins, until 40% of the 10,000 live users logged in anew.
    storm = storm_at(planned, 12_345.0, spec)
    assert storm.rate == 3_090.0 and storm.info["capacity_rps"] == 12_345.0
    assert storm.duration == pytest.approx(0.4 * 10_000 / 1_545, abs=0.05)
    # A slow server's storm is cut at storm_max_s: it says how far the store grew.
    slow = storm_at(planned, 20.0, spec)
    assert slow.rate == 10.0 and slow.duration == spec.storm_max_s
    # The remedy's storm: the store's rate and length, and says whose it met.
    frozen = matched(storms[3], dataclasses.replace(storm, duration=0.9))
    assert (frozen.rate, frozen.duration) == (3_090.0, 0.9)
    assert frozen.info["matched"] == "session-memory" and frozen.info["remedy"] == "gc.freeze"
    # No storms: no remedy or control arms either.
    quiet = planned_profile(tmp_path, PLANNED.replace("storm_sizes = [10000]\n", ""))
    assert storm_arms(SimpleNamespace(profile=quiet)) == []  # type: ignore[arg-type]


def test_a_profile_names_sizes_in_order_and_storms_among_them(tmp_path: Path) -> None:
    for table, message in (
            ("sizes = [1000]\nstorm_sizes = [5000]\n",
             r"storm_sizes: 5,000 is not one of the sizes"),
            ("sizes = [10000, 1000]\n", r"sizes: from the fewest to the most"),
            ("sizes = [1000]\nrate_fraction = 0.5\n", r"rate_fraction: .* under 0\.5"),
            ("sizes = [1000]\ncontrol = \"nobody\"\n", r"control: unknown variant")):
        profile = tmp_path / "stray.toml"
        profile.write_text('name = "stray"\nexperiments = ["population"]\n[population]\n'
                           + table)
        with pytest.raises(ProfileError, match=message):
            load_profile(str(profile))


def test_the_arm_rate_is_a_share_of_the_lower_capacity_per_core() -> None:
    spec = SimpleNamespace(rate_fraction=0.25)
    assert arm_rate(spec, {"a": [10_000.0, 9_000.0], "b": [8_000.0]}) == 2_000.0  # type: ignore[arg-type]
    with pytest.raises(VariantFailed, match="no flat-out window"):
        arm_rate(spec, {"a": [10_000.0]})  # type: ignore[arg-type]
