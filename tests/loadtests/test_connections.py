"""The connections experiment's own logic (its real run is in test_bench's smoke)."""

from __future__ import annotations

import resource
from types import SimpleNamespace

from loadtests.experiments import load_profile
from loadtests.experiments.connections import plan, raise_descriptor_limit


def test_each_count_is_one_measurement_with_that_many_connections() -> None:
    ctx = SimpleNamespace(profile=load_profile("full"))
    planned = plan(ctx)  # type: ignore[arg-type]
    memory = [p for p in planned if p.variant == "session-memory"]
    assert [(p.label, p.users, p.info["connections"]) for p in memory] == [
        ("c10", 10, 10), ("c100", 100, 100), ("c1000", 1000, 1000), ("c10000", 10000, 10000)]
    assert {p.rate for p in planned} == {1000} and {p.generator for p in planned} == {"loadgen"}


def test_the_descriptor_limit_is_raised_to_the_hard_one_and_no_further() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        assert raise_descriptor_limit(10) == soft  # enough already: unchanged
        if hard != resource.RLIM_INFINITY and hard > 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
            assert raise_descriptor_limit(1000) == hard
            # Beyond the hard limit nothing can be done: the caller refuses the count.
            assert raise_descriptor_limit(hard + 1) == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
