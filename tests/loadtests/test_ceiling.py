"""The generator's ceiling, measured for real against nginx (make generator-ceiling)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadtests.ceiling import main
from loadtests.experiments.calibrate import CALIBRATION_FILE


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None and shutil.which("nginx", path="/usr/sbin")
                    is None, reason="nginx is not installed (.ci/run installs nginx-light)")
def test_the_ceiling_is_measured_in_multiples_of_none(tmp_path: Path) -> None:
    # A small capacity for none: every multiple is well within the generator's reach.
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(
        {"variants": {"none": {"capacity_rps": 1000.0}}}))
    assert main(["--results", str(tmp_path), "--multiples", "0.5", "2"]) == 0
    found = json.loads((tmp_path / "generator-ceiling.json").read_text())
    closed, half, double = found["rows"]
    assert [r["rate"] for r in found["rows"]] == [0, 500, 2000]
    assert closed["served_rps"] > 5000 and closed["offered"]  # nginx: far above 1,000/s
    assert half["offered"] and double["offered"] and double["served_rps"] >= 1980
    assert found["fixed_rate_multiple_of_none"] == 2.0
    assert found["pinning"]["server_cpus"] != found["pinning"]["generator_cpus"]


def test_without_a_calibration_it_says_what_to_run(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--results", str(tmp_path)]) == 1
    assert "run make calibrate first" in capsys.readouterr().err
