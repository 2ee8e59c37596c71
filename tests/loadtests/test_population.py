"""The population experiment's own logic (its real runs are in test_bench)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from loadtests.experiments import load_profile
from loadtests.experiments.population import (
    DoesNotFit,
    bytes_per_user,
    check_fits,
    distributions,
    plan,
)
from loadtests.runner.loadgen import Logins


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
    assert distributions("session-cookie", ctx.profile.population) == ["logged-in"]
    assert distributions("jwt-hs256-revocable", ctx.profile.population) == ["minted"]
    # The remedy beside the plain store: session-memory again, every step, its own labels.
    frozen = [p for p in planned if p.info.get("remedy") == "gc.freeze"]
    assert {p.variant for p in frozen} == {"session-memory"}
    assert sorted(p.label for p in frozen) == sorted(
        "freeze-" + p.label for p in planned
        if p.variant == "session-memory" and "remedy" not in p.info)
