"""The calibrate experiment: what each variant's authentication costs and how much load it
takes. `make calibrate` (loadtests.calibrate) runs it alone.

Server and generator on their pinned cores, for the control and each variant it measures:

- the primitives alone in a tight loop (`loadtests.primitives`: PyJWT decode per algorithm,
  a redis-py GET to the private Redis, Fernet, a dict lookup);
- the in-server auth cost, from `Server-Timing`, one request at a time (verify.probe_auth);
- what the server serves flat out: the fast generator in closed loop (`connections`
  requests always in flight), once, where the search starts from;
- the capacity: the highest fixed rate whose measured window has no error, a p99 under the
  bound and at least 95% of the rate achieved, found by stepping the rate up by `growth`
  from a fraction of the closed-loop figure until a step misses (twice in a row), then
  bisecting between the last pass and the first miss. Each variant says what stopped it,
  from both cores' CPU: the server's core, the generator's, errors, or the latency bound;
- its capacity relative to the control's, from a duet (the variant and `none` on the
  server core at once, flat out, loadtests.runner.duet) beside the A/A control (`none`
  against itself): the cross-check, that the calibrated capacities' ratio agrees with the
  duet's within 15% where the A/A control holds. (Against a flat-out window measured on
  its own it could not: this VM's core changes speed by up to 1.9x within a second, which
  a rate held to a p99 bound must ride out and a flat-out window averages away.)

It writes calibration.json into the run folder; `make calibrate` copies it to
results/calibration.json, from which `make bench` takes the latency rates as fractions of
capacity.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from analysis.duet import FLAT, control, pair_ratios, windows
from analysis.report.appendix import duet_cell
from loadtests.atomic import write_json
from loadtests.experiments import duet, primitives
from loadtests.runner.context import Context, Group, Planned, VariantFailed
from loadtests.runner.folder import now_iso
from loadtests.runner.loadgen import LoadResult, run_load, tens, write_credentials
from loadtests.runner.processes import ProcessError
from loadtests.runner.profile import ProfileError
from loadtests.runner.sampler import CpuMeter, CpuUse
from loadtests.runner.verify import probe_auth
from servers.variants.registry import variant

NAME = "calibrate"
CONTROL = "none"
AA = "aa"
# The cross-check's duet windows, apart from the duet experiment's.
DUET_ROOT = "calibrate/duet"
# Calibration takes minutes: a profile runs it only when it lists it (calibrate, full, soak).
RUNS_BY_DEFAULT = False

CALIBRATION_FILE = "calibration.json"
ACHIEVED_SHARE = 0.95
# A missed step was the server's limit when its core was at least this busy while the
# generator's was under GENERATOR_BUSY_PERCENT; the generator's when its core was that busy.
SERVER_BUSY_PERCENT = 90.0
GENERATOR_BUSY_PERCENT = 80.0

# In-server auth p50 over the primitives its path runs (the registry's), in a tight loop
# (issue #8's targets; None: shown only). session-memory's primitive, a dict lookup, is
# below the cost of reading a header: it has a budget instead.
AUTH_RATIO_TARGETS: dict[str, float | None] = {
    "jwt-hs256": 1.2, "jwt-rs256": 1.2, "jwt-es256": 1.2, "jwt-eddsa": 1.2,
    "jwt-hs256-revocable": 1.2, "session-redis": 1.3, "session-cookie": None,
}
SESSION_MEMORY_BUDGET_US = 5.0
# Capacity over the `none` control's, at least.
CAPACITY_TARGETS = {"session-memory": 0.8, "jwt-hs256": 0.5, "session-redis": 0.45,
                    "jwt-rs256": 0.4, "jwt-es256": 0.25, "jwt-eddsa": 0.25}
# The capacity relative to the control's and the duet's ratio, two readings of one
# ratio, agree within this.
DUET_AGREEMENT = 0.15


@dataclasses.dataclass
class Step:
    """One rate of the capacity search, from its measurement's row (analysis.load)."""

    rate: float
    achieved_rps: float
    p99_ms: float
    errors: int
    server_cpu_percent: float
    generator_cpu_percent: float
    server_cpu_us_per_request: float
    passed: bool
    why: str

    redis_cpu_us_per_request: float = math.nan

    @classmethod
    def from_load(cls, rate: float, result: LoadResult, cpu: CpuUse,
                  p99_bound_ms: float) -> Step:
        """A step from the fast generator's run and the CPU both cores spent in it."""
        p99_ms = result.latency.get_value_at_percentile(99) / 1000 if result.answered \
            else math.nan
        achieved = result.achieved_rps
        why = ("errors" if result.errors else
               "p99 over the bound" if not p99_ms <= p99_bound_ms else
               "rate not reached" if not achieved >= ACHIEVED_SHARE * rate else "")
        return cls(rate, round(achieved, 1), round(p99_ms, 3), result.errors,
                   round(cpu.server_percent, 1), round(cpu.generator_percent, 1),
                   round(cpu.server_us_per_request, 1), not why, why,
                   round(cpu.redis_us_per_request, 1))

    def limited_by(self) -> str:
        """What stopped a missed step, from both cores: the server when its core was at
        least 90% busy and the generator's under 80%; the generator when its core was 80%
        busy or more; errors; the latency bound; else undetermined (neither core busy)."""
        if self.errors:
            return "errors"
        if self.server_cpu_percent >= SERVER_BUSY_PERCENT and \
                self.generator_cpu_percent < GENERATOR_BUSY_PERCENT:
            return "server"
        if self.generator_cpu_percent >= GENERATOR_BUSY_PERCENT:
            return "generator"
        if self.why == "p99 over the bound":
            return "latency"
        return "undetermined"


@dataclasses.dataclass(frozen=True)
class Section:
    """The capacity search: fixed-rate steps from start_rate, times growth while they pass,
    up to max_rate, then `refine_steps` bisections between the last pass and the first
    miss. Without start_rate and max_rate, they are `start_fraction` and `max_fraction` of
    what the variant served flat out (closed loop, `closed_loop_s`)."""

    p99_ms: float = 20.0
    start_fraction: float = 0.5
    max_fraction: float = 1.5
    start_rate: float = 0.0
    max_rate: float = 0.0
    growth: float = 1.2
    refine_steps: int = 2
    # Locust users of the overload experiment's calm windows (the search itself runs the
    # fast generator: `connections` at most in flight, one of `credentials` users each).
    users: int = 8
    connections: int = 64
    credentials: int = 1000
    duration_s: float = 4.0
    closed_loop_s: float = 3.0
    probe_requests: int = 2000
    # The cross-check's duet against the control: blocks of flat-out windows.
    duet_blocks: int = 2
    duet_windows: int = 4
    duet_window_s: float = 1.0
    variants: tuple[str, ...] = ()

    def check(self, where: str) -> None:
        if self.growth <= 1:
            raise ProfileError(f"{where}.growth: must be above 1, got {self.growth!r}")


def search_capacity(run_step: Callable[[float], Step], spec: Section,
                    between: Callable[[], object] = lambda: None) -> dict[str, Any]:
    """Step the rate up until a step misses, then bisect; the highest passing rate wins.
    `between` runs once, after the climb and before the bisection.

    A miss is tried once more before it counts: on a shared two-core machine one step in a
    few misses 95% of its rate by a hair while neither core is busy (measured: 94.7% of
    5250 req/s with the server at 60% CPU), which would end the search far too early.
    """
    steps: list[Step] = []

    def confirmed(rate: float) -> Step:
        step = run_step(rate)
        steps.append(step)
        if not step.passed:
            step = run_step(rate)
            steps.append(step)
        return step

    passed: Step | None = None
    missed: Step | None = None
    rate = spec.start_rate
    ceiling = spec.max_rate or math.inf  # 0: no ceiling
    while missed is None:
        step = confirmed(rate)
        if not step.passed:
            missed = step
        else:
            passed = step
            if rate >= ceiling:
                break
            rate = min(ceiling, tens(rate * spec.growth))
    between()
    for _ in range(spec.refine_steps if missed is not None else 0):
        low = passed.rate if passed is not None else 0.0
        assert missed is not None
        rate = tens((low + missed.rate) / 2)
        if rate <= low or rate >= missed.rate:
            break
        step = confirmed(rate)
        if step.passed:
            passed = step
        else:
            missed = step
    return {
        "capacity_rps": passed.rate if passed is not None else 0.0,
        "limited_by": missed.limited_by() if missed is not None else "max_rate",
        "steps": [dataclasses.asdict(s) for s in steps],
    }


def at_capacity(found: dict[str, Any]) -> dict[str, Any]:
    """CPU at the capacity (the highest passing step): per-request CPU falls as the rate
    rises (fixed costs per second, more requests per event-loop turn), so this is the
    figure for a server run at its capacity, not at a lower rate."""
    passing = [s for s in found["steps"] if s["passed"] and s["rate"] == found["capacity_rps"]]
    if not passing:
        return {}
    step = passing[-1]
    return {"server_cpu_us_per_request": step["server_cpu_us_per_request"],
            "redis_cpu_us_per_request": step["redis_cpu_us_per_request"],
            "server_cpu_percent": step["server_cpu_percent"]}


def read_primitives(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    with path.open() as f:
        return {row["primitive"]: float(row["us_per_op"]) for row in csv.DictReader(f)}


def targets(variants: dict[str, dict[str, Any]], primitives: dict[str, float]
            ) -> list[dict[str, Any]]:
    """Every ratio the issue sets a target for (and a few shown without one)."""
    checks: list[dict[str, Any]] = []
    for name, limit in AUTH_RATIO_TARGETS.items():
        names = variant(name).primitives
        measured = variants.get(name, {}).get("auth_us_p50")
        if measured is None or not all(n in primitives for n in names):
            continue
        base = sum(primitives[n] for n in names)
        checks.append(check(name, "auth p50 / " + " + ".join(names), measured / base, limit,
                            "<="))
    memory = variants.get("session-memory", {}).get("auth_us_p50")
    if memory is not None:
        checks.append(check("session-memory", "auth p50 (us)", memory,
                            SESSION_MEMORY_BUDGET_US, "<="))
    control = variants.get("none", {})
    for name, floor in CAPACITY_TARGETS.items():
        entry = variants.get(name)
        if entry is None or not control.get("capacity_rps"):
            continue
        checks.append(check(name, "capacity / none", entry["capacity_rps"] /
                            control["capacity_rps"], floor, ">="))
    for name, entry in variants.items():
        duet = entry.get("duet_vs_none")
        if not duet or not control.get("capacity_rps") or not entry.get("capacity_rps") \
                or name == "none":
            continue
        found = check(name, "(capacity / none's) / the duet's ratio",
                      entry["capacity_rps"] / control["capacity_rps"] / duet["ratio"],
                      DUET_AGREEMENT, "within")
        if not duet.get("control_holds"):
            found["met"] = None  # the duet was not trusted that day: nothing to check
        checks.append(found)
    return checks


def check(variant: str, what: str, value: float, target: float | None, sense: str
          ) -> dict[str, Any]:
    """A measured ratio against its target: at most (<=), at least (>=), or within ±target
    of 1 (within)."""
    if target is None:
        return {"variant": variant, "what": what, "value": round(value, 3), "target": None,
                "met": None}
    if math.isnan(value):
        met = None
    elif sense == "within":
        met = abs(value - 1) <= target
    else:
        met = value <= target if sense == "<=" else value >= target
    shown = f"1 ± {target:g}" if sense == "within" else f"{sense} {target:g}"
    return {"variant": variant, "what": what, "value": round(value, 3), "target": shown,
            "met": met}


def table(calibration: dict[str, Any]) -> list[Table]:
    variants = Table(title=f"capacity: p99 <= {calibration['p99_bound_ms']:g} ms, no errors, "
                           f">= {ACHIEVED_SHARE:.0%} of the rate achieved")
    for column in ("variant", "auth p50 us", "auth p90 us", "capacity req/s", "limited by",
                   "closed loop req/s", "server core at capacity", "server CPU us/req",
                   "Redis CPU us/req", "duet: capacity / none's"):
        variants.add_column(column, no_wrap=column == "variant",
                            justify="left" if column in ("variant", "limited by") else "right")
    for name, v in calibration["variants"].items():
        variants.add_row(name, f"{v['auth_us_p50']:.1f}", f"{v['auth_us_p90']:.1f}",
                         f"{v['capacity_rps']:g}", v["limited_by"],
                         f"{v.get('closed_loop_rps', math.nan):.0f}",
                         f"{v.get('server_cpu_percent', math.nan):.0f}%",
                         f"{v.get('server_cpu_us_per_request', math.nan):.0f}",
                         f"{v.get('redis_cpu_us_per_request', math.nan):.0f}",
                         duet_cell(v))
    ratios = Table(title="targets (ratios measured in this one run)")
    for column in ("variant", "ratio", "value", "target", "met"):
        ratios.add_column(column, no_wrap=column == "variant",
                          justify="right" if column == "value" else "left")
    for c in calibration["targets"]:
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[c["met"]]
        ratios.add_row(c["variant"], c["what"], f"{c['value']:.2f}", c["target"] or "-", met)
    return [variants, ratios]


def plan(ctx: Context) -> list[Planned]:
    """No Locust measurement: the search runs the fast generator, step by step, each step
    named in the progress line."""
    return []


def run(ctx: Context, planned: list[Planned]) -> None:
    """Each variant's in-server auth cost and capacity; calibration.json in the run folder."""
    spec: Section = ctx.profile.calibrate
    primitives.run(ctx, [])
    found: dict[str, Any] = {}
    for name in ctx.profile.variants_for(NAME):
        with ctx.groups(NAME, (name,)) as groups:
            group = groups.get(name)
            if group is not None and not group.failed:
                found[name] = calibrate_variant(ctx, group, spec)
    if CONTROL in found:
        for name, ratio in duet_against_control(ctx, spec, list(found)).items():
            if name in found and ratio:
                found[name]["duet_vs_none"] = ratio
    ctx.capacities = found
    result = {
        "created_at": now_iso(), "run_id": ctx.run.path.name,
        "p99_bound_ms": spec.p99_ms, "achieved_share": ACHIEVED_SHARE,
        "pinning": ctx.pinning.as_dict(), "machine": ctx.run.manifest["machine"],
        "git": ctx.run.manifest["git"],
        "primitives_us": read_primitives(primitives.csv_path(ctx)),
        "variants": found,
    }
    result["targets"] = targets(found, result["primitives_us"])
    write_json(ctx.run.path / CALIBRATION_FILE, result)
    ctx.run.manifest["rates_from"] = {"calibration": CALIBRATION_FILE,
                                      "created_at": result["created_at"]}
    ctx.run.save()


def calibrate_variant(ctx: Context, group: Group, spec: Section) -> dict[str, Any]:
    ctx.describe(f"calibrate · {group.variant} · auth cost, one request at a time")
    probe = probe_auth(group.urls[0], group.variant, spec.probe_requests)
    folder = ctx.run.path / "raw" / NAME / group.variant
    credentials = folder / "credentials.txt"
    users = range(1, min(spec.credentials, ctx.profile.login_users) + 1)
    distinct = write_credentials(group.urls[0], group.variant, users, credentials)
    port = group.servers[0].port

    def step(rate: float, label: str = "c", duration: float = spec.duration_s) -> Step:
        ctx.describe(f"calibrate · {group.variant} · "
                     + (f"{rate:g} req/s" if rate else "closed loop"))
        with CpuMeter(group.servers[0].child.pid,
                      group.redis.client() if group.redis is not None else None) as meter:
            result = run_load(port, credentials, folder / f"{label}{rate:g}.txt", rate=rate,
                              connections=spec.connections, duration=duration,
                              warmup=ctx.profile.warmup_s, cpus=ctx.pinning.generator_cpus)
        return Step.from_load(rate, result, meter.use(result, ctx.profile.warmup_s + duration),
                              spec.p99_ms)

    before = step(0.0, label="closed", duration=spec.closed_loop_s)
    searched = dataclasses.replace(
        spec, start_rate=spec.start_rate or tens(spec.start_fraction * before.achieved_rps),
        max_rate=spec.max_rate or tens(spec.max_fraction * before.achieved_rps))
    found = search_capacity(step, searched)
    return {**probe, "credentials": distinct, "closed_loop_rps": before.achieved_rps,
            "closed_loop": [dataclasses.asdict(before)], **found, **at_capacity(found)}


def duet_against_control(ctx: Context, spec: Section, names: list[str]
                         ) -> dict[str, dict[str, Any]]:
    """Each variant flat out beside the control on the server core at once, and the control
    against itself: each one's capacity relative to the control's, with its interval, and
    whether the A/A control held (analysis.duet)."""
    pairs = [duet.DuetPair(CONTROL, CONTROL, AA)] + \
        [duet.DuetPair(CONTROL, v, NAME) for v in names if v != CONTROL]
    window = duet.Section(blocks=spec.duet_blocks, flat_windows=spec.duet_windows,
                          window_s=spec.duet_window_s)
    steps = [Planned(NAME, p.name, f"flat-b{b}-w{k}", b, "read", 0.0, window.connections,
                     window.window_s, info={"phase": duet.FLAT, "kind": p.kind},
                     generator=NAME) for b in range(1, spec.duet_blocks + 1)
             for p in pairs for k in range(spec.duet_windows)]
    estimates: dict[str, dict[str, list[float]]] = {}
    for block in range(1, spec.duet_blocks + 1):
        for pair in pairs:
            mine = [s for s in steps if s.variant == pair.name and s.repetition == block]
            try:
                duet.run_block(ctx, window, pair, block, mine, estimates, {}, DUET_ROOT,
                               count=False)
            except (VariantFailed, ProcessError) as exc:
                ctx.fail(NAME, pair.name, f"the duet against the control: {exc}")
    ratios = pair_ratios(windows(ctx.run.path, DUET_ROOT))
    aa = control(ratios, FLAT)
    holds = bool(aa and aa["holds"])
    kept = ("ratio", "ratio_low", "ratio_high", "n", "windows", "left_out")
    found = {r["b"]: {k: r[k] for k in kept} | {"control_holds": holds}
             for r in ratios if r["kind"] == NAME}
    found[CONTROL] = {k: aa[k] for k in kept} \
        | {"control_holds": holds} if aa else {}
    return found
