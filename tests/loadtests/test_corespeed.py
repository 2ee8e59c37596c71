"""How steady a core ran: the figures from work counted per stretch, and a real probe."""

from __future__ import annotations

import os

from loadtests.runner.corespeed import STRETCH_S, steadiness, stretch_counts


def test_steadiness_is_relative_to_the_median_stretch() -> None:
    # Ten stretches: eight at the median pace, one a third slower, one 20% faster.
    found = steadiness([600] * 8 + [400, 720], 0.15)
    assert found["units_per_stretch_median"] == 600
    assert found["slowest_over_median"] == 0.667 and found["fastest_over_median"] == 1.2
    assert found["off_share"] == 0.2 and found["stretches"] == 10 and found["off_by"] == 0.15


def test_a_core_at_one_speed_is_never_off() -> None:
    found = steadiness([500, 510, 490, 505], 0.15)
    assert found["off_share"] == 0.0


def test_the_probe_counts_work_on_the_core_it_was_given_and_gives_the_thread_back() -> None:
    before = os.sched_getaffinity(0)
    cpu = max(before)
    counts = stretch_counts(cpu, 0.5)
    assert len(counts) == round(0.5 / STRETCH_S) and min(counts) > 0
    assert os.sched_getaffinity(0) == before
