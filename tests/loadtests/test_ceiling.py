"""The generator's ceiling, measured for real against nginx (make generator-ceiling)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadtests.ceiling import LATE_SHARE, main
from loadtests.experiments.calibrate import CALIBRATION_FILE


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None and shutil.which("nginx", path="/usr/sbin")
                    is None, reason="nginx is not installed (.ci/run installs nginx-light)")
def test_the_ceiling_is_measured_in_multiples_of_none(tmp_path: Path) -> None:
    # A small capacity for none: every multiple is well within the generator's reach.
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(
        {"variants": {"none": {"capacity_rps": 1000.0}}}))
    assert main(["--results", str(tmp_path), "--multiples", "0.5", "2", "--seconds", "1.5"]) == 0
    found = json.loads((tmp_path / "generator-ceiling.json").read_text())
    closed, half, double = found["rows"]
    assert [r["rate"] for r in found["rows"]] == [0, 500, 2000]
    assert closed["served_rps"] > 5000 and closed["offered"]  # nginx: far above 1,000/s
    assert half["served_rps"] >= 495 and double["served_rps"] >= 1980
    # On time is the VM's to give: its wake-ups came over 1 ms late for 5-21% of the
    # requests at these rates in one window in three on 2 December 2026 (steal), against
    # 1.35% before. The rule is what is tested, and the figure it gives.
    for row in (half, double):
        late_or_failed = row["late_share"] >= LATE_SHARE or row["errors"] > 0
        assert not (row["offered"] and late_or_failed)
    assert found["fixed_rate_multiple_of_none"] == max(
        (r["multiple_of_none"] for r in (half, double) if r["offered"]), default=0)
    assert found["pinning"]["server_cpus"] != found["pinning"]["generator_cpus"]
    assert found["seconds"] == 1.5


def test_without_a_calibration_it_says_what_to_run(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--results", str(tmp_path)]) == 1
    assert "run make calibrate first" in capsys.readouterr().err
