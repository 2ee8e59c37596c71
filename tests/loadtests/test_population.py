"""The population experiment's own logic (its real runs are in test_bench)."""

from __future__ import annotations

import pytest

from loadtests.experiments.population import DoesNotFit, bytes_per_user, check_fits


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
