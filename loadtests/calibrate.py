"""`make calibrate`: the calibrate experiment alone; its tables, and results/calibration.json.

    python -m loadtests.calibrate [--profile calibrate] [--results DIR]

One bench run of the `calibrate` profile (see loadtests.experiments.calibrate for what it
measures). Its calibration.json is copied to RESULTS/calibration.json, from which
`make bench` takes the latency rates as fractions of capacity.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from loadtests import bench
from loadtests.atomic import write_text
from loadtests.experiments.calibrate import CALIBRATION_FILE, table
from loadtests.runner.processes import REPO_ROOT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="calibrate",
                        help="a profile whose experiments include calibrate")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                        help="folder that receives the run folder (default: results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    code = bench.main(["--profile", args.profile, "--results", str(args.results),
                       "--no-report"])
    produced = (args.results / "latest").resolve() / CALIBRATION_FILE
    # Piped or logged, rich would fold the columns to 80 characters.
    console = Console() if sys.stdout.isatty() else Console(width=130)
    if not produced.exists():
        console.print("no calibration was written: see the run's manifest.json")
        return code or 1
    text = produced.read_text()
    for t in table(json.loads(text)):
        console.print(t)
    write_text(args.results / CALIBRATION_FILE, text)
    console.print(f"{produced} (also {args.results / CALIBRATION_FILE}, which make bench uses)")
    return code


if __name__ == "__main__":
    sys.exit(main())
