"""`make bench`: verify the servers, run the profile's experiments, sample, keep provenance.

    python -m loadtests.bench [--profile quick|smoke|full|path/to/mine.toml] [--results DIR]

Writes results/<run-id>/ (manifest.json, verify.json, raw/...) and points results/latest at
it; then builds the report when the analysis package is there. docs/methodology.md is the
spec: server and generator pinned to different cores, every server verified before load,
warm-up thrown away, repetitions interleaved across variants, every child stopped whatever
happens. The experiments are in loadtests.experiments; what they run on in loadtests.runner.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from analysis.load import MeasurementRecord
from loadtests.atomic import write_text
from loadtests.experiments import BY_NAME, load_profile
from loadtests.experiments.calibrate import CALIBRATION_FILE
from loadtests.runner import provenance
from loadtests.runner.context import Context, Interrupted, Pinning
from loadtests.runner.folder import RunFolder, now_iso
from loadtests.runner.processes import REPO_ROOT, Supervisor
from loadtests.runner.profile import ProfileError
from loadtests.runner.tables import console


def run_experiments(ctx: Context) -> None:
    """Each of the profile's experiments in its order, each with the plan it makes now (a
    calibration earlier in the run may have changed its rates). One that fails is recorded
    in the manifest's failures, and the run goes on with the next."""
    for name in ctx.profile.experiments:
        module = BY_NAME[name]
        try:
            module.run(ctx, module.plan(ctx))
        except Interrupted:
            raise
        except Exception as exc:  # one experiment's failure is a row of the manifest
            console.print_exception(max_frames=8)
            ctx.fail(name, "all", f"the experiment stopped: {type(exc).__name__}: {exc}")
    ctx.progress.update(ctx.task, description="done")


def planned_measurements(ctx: Context) -> int:
    return sum(len(BY_NAME[name].plan(ctx)) for name in ctx.profile.experiments)


def build_report(run_dir: Path) -> bool:
    """The report hook: `python -m analysis RUN` when the analysis package is there."""
    if not (REPO_ROOT / "analysis" / "__main__.py").exists():
        console.print("no analysis package yet: raw data kept, no report built")
        return False
    done = subprocess.run([sys.executable, "-m", "analysis", str(run_dir)], cwd=REPO_ROOT)
    return done.returncode == 0


def summary_table(run: RunFolder, records: list[MeasurementRecord]) -> Table:
    table = Table(title=f"authscale run {run.path.name} ({run.manifest['status']})")
    for column in ("experiment", "variant", "measurements", "requests", "failures",
                   "failed runs"):
        table.add_column(column, justify="right" if column not in ("experiment", "variant")
                         else "left")
    keyed: dict[tuple[str, str], list[MeasurementRecord]] = {}
    for r in records:
        keyed.setdefault((r.experiment, r.variant), []).append(r)
    for (experiment, variant), items in keyed.items():
        table.add_row(experiment, variant, str(len(items)), str(sum(r.requests for r in items)),
                      str(sum(r.failures for r in items)), str(sum(not r.ok for r in items)))
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick",
                        help="smoke, quick, full, or a path to a profile .toml")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                        help="folder that receives the run folder")
    parser.add_argument("--no-report", action="store_true", help="skip building the report")
    parser.add_argument("--processes", type=int, default=1,
                        help="Locust worker processes per measurement (on the generator cores)")
    parser.add_argument("--calibration", default=None,
                        help="calibration.json to take rates from (profiles' `fractions`); "
                             "default: RESULTS/calibration.json when made on this machine; "
                             "'none' for the profiles' fixed rates")
    return parser.parse_args(argv)


def load_capacities(choice: str | None, results: Path, machine: dict[str, Any]
                    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The calibration's per-variant figures, and what the manifest says about their origin.

    The default file is used only when made on this machine (same CPU model and cores):
    another machine's capacities would choose rates this one cannot serve.
    """
    if choice == "none":
        return None, {"calibration": None, "reason": "--calibration none"}
    path = Path(choice) if choice else results / CALIBRATION_FILE
    if not path.exists():
        if choice:
            raise ProfileError(f"--calibration {choice}: no such file")
        return None, {"calibration": None, "reason": f"no {path.name} in {shown(results)}"}
    try:
        data = json.loads(path.read_text())
        variants = data["variants"]
    except (ValueError, KeyError) as exc:
        raise ProfileError(f"{path}: not a calibration file ({exc})") from None
    same = all(data.get("machine", {}).get(k) == machine.get(k)
               for k in ("cpu_model", "logical_cores"))
    if not same and not choice:
        return None, {"calibration": None,
                      "reason": f"{shown(path)} was made on another machine"}
    return variants, {"calibration": str(shown(path)), "created_at": data.get("created_at")}


def shown(path: Path) -> Path:
    """A path as the manifest records it: relative to the working directory when inside it,
    so a run folder does not carry the machine's own paths."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None,
         make_supervisor: Callable[[Path], Supervisor] = Supervisor) -> int:
    """One run; `make_supervisor` places its servers and Redis (local processes, or
    containers for `make bench-compose`)."""
    args = parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"make bench: {exc}", file=sys.stderr)
        return 2
    try:
        capacities, rates_from = load_capacities(args.calibration, args.results,
                                                 provenance.machine())
    except ProfileError as exc:
        print(f"make bench: {exc}", file=sys.stderr)
        return 2
    pinning = Pinning.for_this_machine()
    run = RunFolder.create(args.results, profile, sys.argv if argv is None else argv)
    run.manifest["pinning"] = pinning.as_dict()
    run.manifest["rates_from"] = rates_from
    if rates_from.get("calibration"):  # the run keeps the calibration it used
        write_text(run.path / CALIBRATION_FILE,
                   Path(rates_from["calibration"]).read_text())
    run.manifest["locust_processes"] = args.processes
    # The runner itself (sampling, bookkeeping) stays off the server's core.
    os.sched_setaffinity(0, pinning.generator_cpus)
    (run.path / "logs").mkdir()
    supervisor = make_supervisor(run.path / "logs")
    run.manifest["placement"] = supervisor.placement()
    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGINT, raise_interrupted)
    started = time.monotonic()
    ctx: Context | None = None
    status, detail = "failed", "did not start"
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("remaining"), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            ctx = Context(run, supervisor, pinning, progress, 0, args.processes, capacities)
            planned = planned_measurements(ctx)
            progress.update(ctx.task, total=planned)
            run.manifest["measurements_planned"] = planned
            run.save()
            run_experiments(ctx)
        failed = [r for r in ctx.records if not r.ok]
        if run.manifest["failures"] or failed:
            status = "incomplete"
            detail = (f"{len(run.manifest['failures'])} component failure(s), "
                      f"{len(failed)} failed measurement(s)")
        else:
            status, detail = "complete", "all planned measurements done"
    except Interrupted as exc:
        status, detail = "incomplete", f"interrupted by {exc}"
    except Exception as exc:
        status, detail = ("incomplete" if ctx and ctx.records else "failed",
                          f"{type(exc).__name__}: {exc}")
        console.print_exception()
    finally:
        # From here on a second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        run.manifest["placement"] = supervisor.placement()
        records = ctx.records if ctx else []
        if ctx is not None:
            ctx.close()
            run.manifest["measurements_done"] = len(records) + ctx.done_elsewhere
            run.manifest["seed_seconds"] = {
                v: {str(k): round(s, 3) for k, s in sizes.items()}
                for v, sizes in ctx.seed_seconds.items()}
        run.manifest.update(status=status, status_detail=detail, ended_at=now_iso(),
                            wall_seconds=round(time.monotonic() - started, 1))
        run.save()
    console.print(summary_table(run, records))
    for name in profile.experiments:
        for table in getattr(BY_NAME[name], "summary_tables", lambda path: [])(run.path):
            console.print(table)
    # The report answers the claim from the latency experiment on; a calibration or a soak
    # alone has its own tables above.
    if records and not args.no_report and status != "failed" and \
            "latency" in profile.experiments:
        build_report(run.path)
    console.print(f"{status}: {detail}; results in {run.path}")
    return {"complete": 0, "incomplete": 1}.get(status, 2) if "interrupted" not in detail \
        else 130


if __name__ == "__main__":
    sys.exit(main())
