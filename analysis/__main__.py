"""`python -m analysis RUN` builds a run's report; `compare A B` compares two runs; `pack RUN
DEST` copies what a run's figures are built from and rebuilds its report there.

    python -m analysis results/latest [--users 1000000] [--rps 10000] [--requests-per-day N]
                                      [--price-gib-month P] [--price-vcpu-hour P] [--price-gb P]
    python -m analysis compare results/<run-a> results/<run-b>
    python -m analysis pack results/<run-id> results/reference
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from analysis.charts import all_charts
from analysis.compare import compare_runs, render
from analysis.load import Run, RunFolderError
from analysis.pack import pack
from analysis.report import Prices, build_blocks, render_html, render_markdown
from analysis.summary import latency_curve, summarize


def build(run_dir: Path, users: float, rps: float, requests_per_day: float,
          prices: Prices | None = None) -> dict:
    """Write summary.json, report.md, report.html and charts/*.png into the run folder."""
    run = Run(run_dir)
    summary = summarize(run)
    (run.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    charts = all_charts(run, latency_curve(run), run.path / "charts", requests_per_day,
                        pd.DataFrame(summary["population_curve"]),
                        pd.DataFrame(summary["connections_curve"]))
    primitives = run.csv("raw/primitives.csv")
    blocks = build_blocks(run, summary, charts, primitives, users, rps, requests_per_day,
                          prices or Prices())
    (run.path / "report.md").write_text(render_markdown(blocks, run.path))
    title = f"authscale report {run.manifest.get('run_id')}"
    (run.path / "report.html").write_text(render_html(blocks, title))
    return summary


def compare_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis compare")
    parser.add_argument("base", type=Path)
    parser.add_argument("changed", type=Path)
    args = parser.parse_args(argv)
    base, changed = Run(args.base), Run(args.changed)
    rows, axes = compare_runs(base, changed)
    text = render(rows, axes, base.path.name, changed.path.name)
    print(text, end="")
    (changed.path / f"compare-{base.path.name}.md").write_text(text)
    return 0


def pack_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis pack")
    parser.add_argument("run", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    size = pack(args.run, args.dest)
    build(args.dest, 1e6, 1e4, 1e8)
    print(f"{args.dest}: {size / 2**20:.1f} MiB of raw data, report rebuilt from it")
    return 0


def report_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder, e.g. results/latest")
    parser.add_argument("--users", type=float, default=1e6, help="cost model: concurrent users")
    parser.add_argument("--rps", type=float, default=1e4, help="cost model: requests/s")
    parser.add_argument("--requests-per-day", type=float, default=1e8,
                        help="bytes on the wire: daily traffic")
    default = Prices()
    parser.add_argument("--price-gib-month", type=float, default=default.gib_month,
                        help="cost model: memory, per GiB-month")
    parser.add_argument("--price-vcpu-hour", type=float, default=default.vcpu_hour,
                        help="cost model: one core, per hour")
    parser.add_argument("--price-gb", type=float, default=default.gb,
                        help="cost model: bytes on the wire, per GB")
    args = parser.parse_args(argv)
    prices = Prices(args.price_gib_month, args.price_vcpu_hour, args.price_gb)
    summary = build(args.run, args.users, args.rps, args.requests_per_day, prices)
    print(f"report written to {Path(args.run) / 'report.md'} and report.html")
    for axis in summary["verdict"]["axes"]:
        print(f"  {axis['axis']:<50} {axis['holds']}")
    print(summary["verdict"]["conclusion"])
    return 0


COMMANDS = {"compare": compare_command, "pack": pack_command}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and argv[0] in COMMANDS else None
    prog = "python -m analysis" + (f" {name}" if name else "")
    try:
        return COMMANDS[name](argv[1:]) if name else report_command(argv)
    except RunFolderError as exc:  # a broken or partial run folder: one line, no traceback
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
