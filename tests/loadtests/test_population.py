"""The population experiment's own logic (its real runs are in test_bench)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from loadtests.experiments import load_profile
from loadtests.experiments.population import (
    DoesNotFit,
    bytes_per_user,
    check_fits,
    distributions,
    plan,
    storm_at,
)
from loadtests.runner.loadgen import Logins
from loadtests.runner.profile import ProfileError


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


def test_each_step_is_measured_flat_out_then_over_all_live_users() -> None:
    """Session stores: flat out, then the common rate over all N seeded sessions uniformly
    and over a hot set; HS256 tokens over N users' minted tokens; the others over the
    logged-in users. All with the fast generator, logins beside the reads at the common
    rate only (flat out measures the capacity for reads)."""
    ctx = SimpleNamespace(profile=load_profile("smoke"))
    planned = plan(ctx)  # type: ignore[arg-type]
    labels = {(p.variant, p.label) for p in planned}
    assert {("session-memory", "n1000-flat"), ("session-memory", "n1000-uniform"),
            ("session-memory", "n1000-zipf"), ("session-redis", "n10000-zipf"),
            ("jwt-hs256", "n1000-flat"), ("jwt-hs256", "n1000-minted")} <= labels
    assert ("jwt-hs256", "n1000-zipf") not in labels
    assert all(p.generator == "loadgen" for p in planned)
    flat = next(p for p in planned if p.label == "n1000-flat" and p.variant == "session-redis")
    assert flat.rate == 0 and flat.info == {"population": 1000, "distribution": "uniform",
                                            "phase": "saturation"}
    assert flat.logins is None
    zipf = next(p for p in planned if p.label == "n10000-zipf")
    assert zipf.rate == 200 and zipf.info["phase"] == "common"
    # One request in ten a login, as user1..user<login_users> in turn.
    assert zipf.logins == Logins(10, ctx.profile.login_users)
    assert zipf.info["login_share"] == 0.1
    assert distributions("session-cookie", ctx.profile.population) == ["minted"]
    assert distributions("none", ctx.profile.population) == ["logged-in"]
    assert distributions("jwt-hs256-revocable", ctx.profile.population) == ["minted"]
    # The remedy beside the plain store: session-memory again, every step, its own labels.
    frozen = [p for p in planned if p.info.get("remedy") == "gc.freeze"]
    assert {p.variant for p in frozen} == {"session-memory"}
    assert sorted(p.label for p in frozen) == sorted(
        "freeze-" + p.label for p in planned
        if p.variant == "session-memory" and "remedy" not in p.info)


def test_a_login_storm_grows_the_in_process_store_by_its_share() -> None:
    """At the storm's sizes an in-process store (plain and remedied) meets logins, half the
    requests, at storm_load of the capacity it showed flat out at that size, until it has
    grown by storm_growth (or storm_max_s ran); Redis stores and stateless variants do not
    (the collector's walk is the process's)."""
    ctx = SimpleNamespace(profile=load_profile("smoke"))
    spec = ctx.profile.population
    storms = [p for p in plan(ctx) if p.info["phase"] == "storm"]  # type: ignore[arg-type]
    assert sorted(p.label for p in storms) == ["freeze-n10000-storm", "n10000-storm"]
    planned = storms[0]
    assert planned.variant == "session-memory" and planned.generator == "loadgen"
    assert planned.logins == Logins(2, ctx.profile.login_users)
    assert planned.info["distribution"] == "uniform"
    # Its rate and length come from the flat-out capacity at that size: 40% of 12,345 req/s,
    # half of it logins, until 40% of the 10,000 live users have logged in anew.
    storm = storm_at(planned, 12_345.0, spec)
    assert storm.rate == 4_940.0 and storm.info["capacity_rps"] == 12_345.0
    assert storm.duration == pytest.approx(0.4 * 10_000 / 2_470, abs=0.05)
    # A slow server's storm is cut at storm_max_s: it says how far the store grew.
    slow = storm_at(planned, 20.0, spec)
    assert slow.rate == 10.0 and slow.duration == spec.storm_max_s


def test_a_storm_size_must_be_one_of_the_sizes(tmp_path: Path) -> None:
    profile = tmp_path / "stray.toml"
    profile.write_text('name = "stray"\nexperiments = ["population"]\n[population]\n'
                       'sizes = [1000]\nstorm_sizes = [5000]\n')
    with pytest.raises(ProfileError, match=r"storm_sizes: 5,000 is not one of the sizes"):
        load_profile(str(profile))
