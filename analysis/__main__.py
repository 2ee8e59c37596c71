"""`python -m analysis RUN` builds a run's report; `compare A B` compares two runs; `pack RUN
DEST` copies what a run's figures are built from and rebuilds its report there.

    python -m analysis results/latest [--users 1000000] [--rps 10000] [--requests-per-day N]
                                      [--price-gib-month P] [--price-vcpu-hour P] [--price-gb P]
    python -m analysis compare results/<run-a> results/<run-b>
    python -m analysis pack results/<run-id> results/reference
    python -m analysis plan results/<run-id> --users N --rps R [--rtt-ms X] [--price-... P]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from analysis import answer, crossover, plan
from analysis.charts import all_charts
from analysis.compare import compare_runs, render
from analysis.load import Run, RunFolderError
from analysis.pack import pack
from analysis.report import build_blocks, render_html, render_markdown
from analysis.summary import summarize

# The deployment the report sizes, unless told otherwise: the example README answers.
USERS, RPS, RTT_MS = 2e6, 5e3, 0.5


def build(run_dir: Path, users: float = USERS, rps: float = RPS, requests_per_day: float = 1e8,
          prices: plan.Prices | None = None, rtt_ms: float = RTT_MS) -> dict:
    """Write summary.json, report.md, report.html and charts/*.png into the run folder."""
    run = Run(run_dir)
    summary = summarize(run)
    (run.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    prices = prices or plan.Prices()
    charts = all_charts(run, pd.DataFrame(summary["latency_curve"]), run.path / "charts",
                        summary)
    evidence = plan.evidence(run, summary)
    planned = plan.plan(evidence, users, rps, rtt_ms, prices) if evidence.designs else []
    pairs = [(a, b) for a, b in (("session-memory", "jwt-hs256"), ("session-redis", "jwt-hs256"))
             if {a, b} <= set(evidence.designs)]
    if pairs:
        charts["crossover"] = crossover.draw(
            evidence, pairs, prices, rtt_ms, run.path / "charts" / "crossover.png")
    primitives = run.csv("raw/primitives.csv")
    blocks = build_blocks(run, summary, charts, primitives, users, rps, rtt_ms,
                          requests_per_day, prices, planned)
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
    build(args.dest)
    print(f"{args.dest}: {size / 2**20:.1f} MiB of raw data, report rebuilt from it")
    return 0


def price_arguments(parser: argparse.ArgumentParser) -> None:
    """The planner's prices, each settable (the report states the ones it used)."""
    for name, value in vars(plan.Prices()).items():
        flag = f"--{name.replace('_', '-')}" if name.endswith("_gib") and \
            not name.endswith("month") else f"--price-{name.replace('_', '-')}"
        parser.add_argument(flag, type=float, default=value, dest=name,
                            help=f"default {value:g}")


def prices_of(args: argparse.Namespace) -> plan.Prices:
    return plan.Prices(**{k: getattr(args, k) for k in vars(plan.Prices())})


def report_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder, e.g. results/latest")
    parser.add_argument("--users", type=float, default=USERS,
                        help="the deployment sized: live users at once")
    parser.add_argument("--rps", type=float, default=RPS, help="... and requests/s")
    parser.add_argument("--rtt-ms", type=float, default=RTT_MS,
                        help="... and its round trip to Redis, ms")
    parser.add_argument("--requests-per-day", type=float, default=1e8,
                        help="bytes on the wire: daily traffic")
    price_arguments(parser)
    args = parser.parse_args(argv)
    summary = build(args.run, args.users, args.rps, args.requests_per_day, prices_of(args),
                    args.rtt_ms)
    print(f"report written to {Path(args.run) / 'report.md'} and report.html")
    for axis in summary["verdict"]["axes"]:
        print(f"  {axis['axis']:<50} {axis['holds']}")
    print(summary["verdict"]["conclusion"])
    return 0


def plan_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis plan",
                                     description=plan.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--users", type=float, default=USERS,
                        help=f"live users at once (default {USERS:,.0f})")
    parser.add_argument("--rps", type=float, default=RPS,
                        help=f"requests per second (default {RPS:,.0f})")
    parser.add_argument("--rtt-ms", type=float, default=RTT_MS,
                        help=f"round trip to Redis, ms (default {RTT_MS:g}: within a data "
                             "centre)")
    parser.add_argument("--network-in-total", action="store_true",
                        help="count the bytes on the wire in the total")
    price_arguments(parser)
    args = parser.parse_args(argv)
    if args.users <= 0 or args.rps <= 0 or args.rtt_ms < 0:
        parser.error("--users and --rps must be positive, --rtt-ms at least 0")
    run = Run(args.run)
    summary = summarize(run)
    prices = prices_of(args)
    rows = plan.plan(plan.evidence(run, summary), args.users, args.rps, args.rtt_ms, prices,
                     args.network_in_total)
    print(plan.render(rows, args.users, args.rps, args.rtt_ms, prices,
                      str(run.manifest.get("run_id")), args.network_in_total), end="")
    return 0


def readme_text(run: Run, where: str) -> str:
    """README's answer block for a run (its committed summary.json and raw data)."""
    summary = json.loads((run.path / "summary.json").read_text())
    prices = plan.Prices()
    planned = plan.plan(plan.evidence(run, summary), USERS, RPS, RTT_MS, prices)
    return answer.readme_block(summary, where, answer.when(run),
                               answer.deployment_lines(planned, USERS, RPS, RTT_MS))


def readme_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis readme",
                                     description="write the reference's answer into README")
    parser.add_argument("run", type=Path, help="the reference run, e.g. results/reference")
    parser.add_argument("readme", type=Path, help="README.md")
    args = parser.parse_args(argv)
    block = readme_text(Run(args.run), args.run.as_posix())
    summary = json.loads((args.run / "summary.json").read_text())
    text = args.readme.read_text()
    args.readme.write_text(answer.replace_block(text, block))
    print(f"{args.readme}: the answer from {summary.get('run_id')}")
    return 0


COMMANDS = {"compare": compare_command, "pack": pack_command, "plan": plan_command,
            "readme": readme_command}


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
