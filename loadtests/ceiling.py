"""`make generator-ceiling`: how much load the fast generator offers from its one core.

    python -m loadtests.ceiling [--results DIR] [--multiples 1 1.5 2 2.5]

A generator's ceiling cannot be read off an aiohttp server, which gives out first. Here the
target is nginx (Debian's nginx-light: one worker, pinned to the server's core, answering
200 from memory, some ten times faster than the `none` control), so the generator's core
is the limit. authscale-loadgen runs closed loop, then at fixed rates that are multiples of
`none`'s capacity from results/calibration.json (`make calibrate`), with requests of a
token's size. A rate counts as offered when 99% of it was served, without error, under 5%
of the requests sent late (over 1 ms after they were due) and no more left unanswered when
the window closed than were in flight. It writes
RESULTS/generator-ceiling.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtests.atomic import write_json
from loadtests.experiments.calibrate import CALIBRATION_FILE
from loadtests.runner import nginx
from loadtests.runner.context import Pinning
from loadtests.runner.folder import now_iso
from loadtests.runner.loadgen import run_load
from loadtests.runner.processes import REPO_ROOT, ProcessError, Supervisor

# Sent over 1 ms after due: this VM's timer wake-ups make a few percent of requests late
# even at low rates (1.35% at 2,000 req/s measured here), so lateness past this share is
# what falling behind looks like, not a few late wake-ups.
LATE_SHARE = 0.05
CONNECTIONS = 64
SECONDS = 4.0  # each window, measured (--seconds)
WARMUP_S = 1.0


def none_capacity(results: Path) -> float:
    path = results / CALIBRATION_FILE
    if not path.exists():
        raise ProcessError(f"no {path}: run make calibrate first (the rates are multiples of "
                           "the none control's capacity)")
    return float(json.loads(path.read_text())["variants"]["none"]["capacity_rps"])


def measure(results: Path, multiples: list[float], seconds: float = SECONDS
            ) -> dict[str, Any]:
    capacity = none_capacity(results)
    pinning = Pinning.for_this_machine()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="authscale-ceiling-") as tmp:
        folder = Path(tmp)
        supervisor = Supervisor(folder)
        try:
            with nginx.running(supervisor, pinning.server_cpus) as server:
                for multiple in [0.0, *multiples]:
                    rows.append(offered_at(server, round(multiple * capacity), multiple,
                                           capacity, folder, pinning, seconds))
        finally:
            supervisor.stop_all()
    fixed = [r for r in rows if r["rate"] and r["offered"]]
    return {"created_at": now_iso(), "none_capacity_rps": capacity,
            "target": "nginx, one worker", "pinning": pinning.as_dict(),
            "connections": CONNECTIONS, "seconds": seconds, "rows": rows,
            "closed_loop_multiple_of_none": rows[0]["served_multiple_of_none"],
            "fixed_rate_multiple_of_none": max((r["multiple_of_none"] for r in fixed),
                                               default=0.0)}


def offered_at(server: nginx.Nginx, rate: float, multiple: float, capacity: float,
               folder: Path, pinning: Pinning, seconds: float) -> dict[str, Any]:
    """One window of `seconds` against nginx at `rate` (0: closed loop), and whether it
    was offered."""
    result = run_load(server.port, server.credentials, folder / "out.txt", rate=rate,
                      connections=CONNECTIONS, duration=seconds, warmup=WARMUP_S,
                      cpus=pinning.generator_cpus, path="/")
    late = result.late / max(1, result.sent)
    # In flight when the window closes is not behind: at most one request per connection
    # may be unanswered then.
    offered = (result.errors == 0 and result.unanswered <= CONNECTIONS and
               (rate == 0 or (late < LATE_SHARE and result.achieved_rps >= 0.99 * rate)))
    return {"rate": rate, "multiple_of_none": multiple,
            "served_rps": round(result.achieved_rps, 1),
            "served_multiple_of_none": round(result.achieved_rps / capacity, 2),
            "late_share": round(late, 4), "errors": result.errors,
            "p99_ms": result.latency.get_value_at_percentile(99) / 1000,
            "generator_core_percent": round(result.cpu_seconds * 100 / (seconds + WARMUP_S),
                                            1),
            "offered": offered}


def table(found: dict[str, Any]) -> Table:
    shown = Table(title=f"authscale-loadgen against nginx on CPU "
                        f"{found['pinning']['server_cpus']}, from CPU "
                        f"{found['pinning']['generator_cpus']}; none's capacity "
                        f"{found['none_capacity_rps']:,.0f} req/s")
    for column in ("offered", "served req/s", "× none", "late", "p99 ms",
                   "generator core", "offered on time"):
        shown.add_column(column, justify="right")
    for r in found["rows"]:
        shown.add_row(f"{r['rate']:,}" if r["rate"] else "closed loop",
                      f"{r['served_rps']:,.0f}", f"{r['served_multiple_of_none']:.2f}",
                      f"{r['late_share']:.2%}", f"{r['p99_ms']:.2f}",
                      f"{r['generator_core_percent']:.0f}%", "yes" if r["offered"] else "no")
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("--multiples", type=float, nargs="+", default=[1.0, 1.5, 2.0, 2.5])
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help="each window's measured seconds (after a 1 s warm-up)")
    args = parser.parse_args(argv)
    try:
        found = measure(args.results, args.multiples, args.seconds)
    except ProcessError as exc:
        print(f"generator-ceiling: {exc}", file=sys.stderr)
        return 1
    write_json(args.results / "generator-ceiling.json", found)
    Console(width=130).print(table(found))
    print(f"closed loop: {found['closed_loop_multiple_of_none']:.2f}x none's capacity; "
          f"fixed rate: {found['fixed_rate_multiple_of_none']:g}x offered on time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
