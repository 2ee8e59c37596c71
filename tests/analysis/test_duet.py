"""The duet's figures and rules, from synthetic windows worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.axes.common import NOT_SETTLED, Evidence
from analysis.axes.duet_pairs import duet_axis
from analysis.duet import FLAT, RATE, control, cpu_between, pair_ratios, windows
from analysis.load import Run
from analysis.stats import LOWER

START = 1_000_000.0


def window(folder: Path, pair: tuple[str, str], kind: str, phase: str, served: tuple[int, int],
           cpu_s: tuple[float, float], rate: float = 0.0, redis_s: tuple[float, float] = (0, 0),
           seconds: float = 1.0) -> None:
    """One window's duet.json and schedstat.csv: each side's server used `cpu_s` seconds of
    CPU evenly through its measured window (and its Redis `redis_s`)."""
    folder.mkdir(parents=True)
    sides = {}
    for i, role in enumerate("ab"):
        sides[role] = {"variant": pair[i], "port": 1000 + i, "server_pid": 10 + i,
                       "redis_pid": 20 + i if redis_s[i] else None, "served": served[i],
                       "errors": 0, "seconds": seconds, "measure_from": START,
                       "cpu_seconds": 0.1}
    record = {"experiment": "duet", "pair": f"{pair[0]}__{pair[1]}", "kind": kind,
              "a": pair[0], "b": pair[1], "phase": phase, "block": 1, "window": folder.name,
              "rate": rate, "connections": 32, "duration_s": seconds, "first": "a",
              "status": "ok", "sides": sides}
    (folder / "duet.json").write_text(json.dumps(record))
    rows = []
    for k in range(-1, 12):  # samples from just before the window to just after it
        t = START + k * seconds / 10
        share = min(max(t - START, 0.0), seconds) / seconds
        rows.append({"timestamp": t,
                     **{f"{r}_server_cpu_ns": int(5e8 + cpu_s[i] * share * 1e9)
                        for i, r in enumerate("ab")},
                     **{f"{r}_redis_cpu_ns": int(2e8 + redis_s[i] * share * 1e9)
                        if redis_s[i] else None for i, r in enumerate("ab")}})
    pd.DataFrame(rows).to_csv(folder / "schedstat.csv", index=False)


def test_cpu_between_interpolates_the_samples() -> None:
    samples = pd.DataFrame({"timestamp": [0.0, 1.0, 2.0], "x": [0, 1e9, 3e9]})
    assert cpu_between(samples, "x", 0.5, 1.5) == pytest.approx(1.5)
    # Outside the sampled stretch: no figure rather than an extrapolated one.
    assert math.isnan(cpu_between(samples, "x", -0.1, 1.0))
    assert math.isnan(cpu_between(samples, "y", 0.0, 1.0))


def test_ratios_per_cpu_second_and_per_request(tmp_path: Path) -> None:
    pair = ("session-memory", "jwt-hs256")
    # Flat out: a serves 4,000 on 0.5 s of CPU (8,000 per CPU-second), b 1,800 on 0.45 s
    # (4,000 per CPU-second, though the scheduler gave it less of the core): b / a = 0.5,
    # where the bare ratio of what each served would say 0.45.
    for k in range(3):
        window(tmp_path / "raw/duet/p/flat-b1-w" f"{k}", pair, "declared", FLAT,
               (4000, 1800), (0.5, 0.45))
    # At 1,000 req/s each: a 0.2 s of CPU, b 0.3 s plus 0.05 s of its Redis: per request
    # 200 and 350 µs, b / a = 1.75.
    for k in range(3):
        window(tmp_path / "raw/duet/p/rate-b1-w" f"{k}", pair, "declared", RATE,
               (1000, 1000), (0.2, 0.3), rate=1000.0, redis_s=(0.0, 0.05))
    frame = windows(tmp_path)
    assert len(frame) == 6 and frame["core_busy"].iloc[0] == pytest.approx(0.95)
    by_phase = {r["phase"]: r for r in pair_ratios(frame)}
    assert by_phase[FLAT]["ratio"] == pytest.approx(0.5, rel=1e-6)
    assert by_phase[FLAT]["served_ratio"] == pytest.approx(0.45, rel=1e-6)
    assert by_phase[FLAT]["a_median"] == pytest.approx(8000, rel=1e-6)
    assert by_phase[RATE]["ratio"] == pytest.approx(1.75, rel=1e-6)
    assert by_phase[RATE]["b_median"] == pytest.approx(350, rel=1e-6)
    assert by_phase[RATE]["n"] == 3 and by_phase[RATE]["left_out"] == 0


def test_windows_that_compare_nothing_are_left_out(tmp_path: Path) -> None:
    pair = ("session-memory", "jwt-hs256")
    # Flat out with the core 60% busy (the servers were not the limit), and a fixed-rate
    # window where b served under 95% of its rate: neither is used.
    window(tmp_path / "raw/duet/p/flat-b1-w0", pair, "declared", FLAT, (4000, 1800),
           (0.3, 0.3))
    window(tmp_path / "raw/duet/p/flat-b1-w1", pair, "declared", FLAT, (4000, 1800),
           (0.5, 0.45))
    window(tmp_path / "raw/duet/p/rate-b1-w0", pair, "declared", RATE, (1000, 900),
           (0.2, 0.3), rate=1000.0)
    by_phase = {r["phase"]: r for r in pair_ratios(windows(tmp_path))}
    assert (by_phase[FLAT]["n"], by_phase[FLAT]["left_out"]) == (1, 1)
    assert (by_phase[RATE]["n"], by_phase[RATE]["left_out"]) == (0, 1)


def aa_row(low: float, high: float, phase: str = FLAT) -> dict[str, Any]:
    return {"kind": "aa", "phase": phase, "a": "session-memory", "b": "session-memory",
            "ratio": (low + high) / 2, "ratio_low": low, "ratio_high": high,
            "half_width": math.log(high / low) / 2, "n": 12}


def test_the_aa_control_holds_only_within_three_percent() -> None:
    assert control([aa_row(0.985, 1.02)], FLAT)["holds"] is True
    assert control([aa_row(0.96, 1.01)], FLAT)["holds"] is False
    assert control([aa_row(0.985, 1.02)], RATE) is None


def evidence(duet: list[dict[str, Any]], instructions: dict[str, Any]) -> Evidence:
    data = Path(__file__).resolve().parent.parent / "data" / "run"
    return Evidence(Run(data), {}, [
        {"session": "session-memory", "token": "jwt-hs256", "reason": "r"},
        {"session": "session-redis", "token": "jwt-hs256-revocable", "reason": "r"}],
        [], duet, {FLAT: control(duet, FLAT), RATE: control(duet, RATE)}, instructions,
        {}, pd.DataFrame(), None)


def declared(a: str, b: str, low: float, high: float, phase: str = FLAT
             ) -> dict[str, Any]:
    return {**aa_row(low, high, phase), "kind": "declared", "a": a, "b": b,
            "figure": "capacity per server core", "a_median": 8000.0, "b_median": 3000.0,
            "left_out": 0, "rate": 0.0}


def counts(**per_request: float) -> dict[str, dict[str, float]]:
    return {k.replace("_", "-"): {"instructions_per_request": v}
            for k, v in per_request.items()}


def test_the_capacity_axis_reads_the_duet_beside_the_instruction_count() -> None:
    duet = [aa_row(0.99, 1.015),
            declared("session-memory", "jwt-hs256", 0.40, 0.42),
            declared("session-redis", "jwt-hs256-revocable", 0.70, 0.95)]
    instructions = counts(session_memory=250e3, jwt_hs256=625e3, session_redis=600e3,
                          jwt_hs256_revocable=640e3)
    axis = duet_axis(evidence(duet, instructions), "capacity", FLAT, "{:,.0f}", "higher")
    # Both intervals below 1.0, the second crossing 0.9.
    assert axis["holds"] == f"tokens {LOWER} in every pair, {NOT_SETTLED} at ±10%"
    # The instructions' capacity ratio: 250 / 625 = 0.40 (beyond the margin, as the duet);
    # 600 / 640 = 0.94, within the margin, while the duet's interval crosses it: no
    # disagreement to report, only the figure.
    assert "instructions 0.40x" in axis["detail"] and "instructions 0.94x" in axis["detail"]
    assert "disagree" not in axis["detail"]
    assert "A/A control session-memory against itself" in axis["detail"]


def test_instruction_count_and_duet_disagreeing_is_said_and_the_duet_decides() -> None:
    duet = [aa_row(0.99, 1.015), declared("session-memory", "jwt-hs256", 0.80, 0.85)]
    axis = duet_axis(evidence(duet, counts(session_memory=600e3, jwt_hs256=625e3)),
                     "capacity", FLAT, "{:,.0f}", "higher")
    assert "misses the kernel's and any Redis's work" in axis["detail"]
    assert "the verdict is the duet's" in axis["detail"]
    assert axis["holds"] == "no"


def test_a_decided_pair_and_an_unsettled_one_that_cannot_agree_depend_on_the_pair() -> None:
    # CPU per request, lower is better: the first pair better beyond the margin; the
    # second's [1.08, 1.13] crosses 1.10 (not settled) yet cannot reach below 0.90.
    duet = [aa_row(0.99, 1.015, phase=RATE),
            declared("session-memory", "jwt-hs256", 1.08, 1.13, phase=RATE),
            declared("session-redis", "jwt-hs256-revocable", 0.54, 0.55, phase=RATE)]
    axis = duet_axis(evidence(duet, {}), "cpu", RATE, "{:,.0f}", "lower")
    assert axis["holds"] == ("depends on the pair: yes for session-redis → "
                             "jwt-hs256-revocable; not settled for session-memory → jwt-hs256")
    # An unsettled pair whose interval still reaches the decided side is inconclusive.
    duet[1] = declared("session-memory", "jwt-hs256", 0.85, 1.05, phase=RATE)
    assert duet_axis(evidence(duet, {}), "cpu", RATE, "{:,.0f}", "lower")["holds"] == \
        "inconclusive"


def test_a_failed_aa_control_leaves_the_axis_undetermined() -> None:
    duet = [aa_row(0.95, 1.04), declared("session-memory", "jwt-hs256", 0.40, 0.42)]
    axis = duet_axis(evidence(duet, {}), "capacity", FLAT, "{:,.0f}", "higher")
    assert axis["holds"].startswith("undetermined (the A/A control")
    assert "could not be trusted on this machine that day" in axis["holds"]
    assert "instructions not counted" in axis["detail"]
