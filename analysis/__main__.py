"""`python -m analysis RUN` builds a run's report; `python -m analysis compare A B` compares.

    python -m analysis results/latest [--users 1000000] [--rps 10000] [--requests-per-day N]
    python -m analysis compare results/<run-a> results/<run-b>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.charts import all_charts
from analysis.compare import compare_runs, render
from analysis.load import Run
from analysis.report import build_blocks, render_html, render_markdown
from analysis.summary import latency_curve, summarize


def build(run_dir: Path, users: float, rps: float, requests_per_day: float) -> dict:
    """Write summary.json, report.md, report.html and charts/*.png into the run folder."""
    run = Run(run_dir)
    summary = summarize(run)
    (run.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    charts = all_charts(run, latency_curve(run), run.path / "charts", requests_per_day)
    primitives = run.csv("raw/primitives.csv")
    blocks = build_blocks(run, summary, charts, primitives, users, rps, requests_per_day)
    (run.path / "report.md").write_text(render_markdown(blocks, run.path))
    title = f"authscale report {run.manifest.get('run_id')}"
    (run.path / "report.html").write_text(render_html(blocks, title))
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        parser = argparse.ArgumentParser(prog="python -m analysis compare")
        parser.add_argument("base", type=Path)
        parser.add_argument("changed", type=Path)
        args = parser.parse_args(argv[1:])
        try:
            base, changed = Run(args.base), Run(args.changed)
        except FileNotFoundError as exc:
            print(f"python -m analysis compare: {exc}", file=sys.stderr)
            return 2
        text = render(compare_runs(base, changed), base.path.name, changed.path.name)
        print(text, end="")
        (changed.path / f"compare-{base.path.name}.md").write_text(text)
        return 0
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder, e.g. results/latest")
    parser.add_argument("--users", type=float, default=1e6, help="cost model: concurrent users")
    parser.add_argument("--rps", type=float, default=1e4, help="cost model: requests/s")
    parser.add_argument("--requests-per-day", type=float, default=1e8,
                        help="bytes on the wire: daily traffic")
    args = parser.parse_args(argv)
    try:
        summary = build(args.run, args.users, args.rps, args.requests_per_day)
    except FileNotFoundError as exc:
        print(f"python -m analysis: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {Path(args.run) / 'report.md'} and report.html")
    for axis in summary["verdict"]["axes"]:
        print(f"  {axis['axis']:<50} {axis['holds']}")
    print(summary["verdict"]["conclusion"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
