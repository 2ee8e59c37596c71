"""`make bench`: verify the servers, run the six experiments, sample, keep provenance.

    python -m loadtests.bench [--profile quick|smoke|full|path/to/mine.toml] [--results DIR]

Writes results/<run-id>/ (manifest.json, verify.json, raw/...) and points results/latest at
it; then builds the report when the analysis package is there. METHODOLOGY.md is the spec:
server and generator pinned to different cores, every server verified before load, warm-up
thrown away, repetitions interleaved across variants, every child stopped whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from analysis.load import Measurement
from loadtests import calibrate as calibration
from loadtests import faults, provenance
from loadtests.atomic import write_csv, write_json, write_text
from loadtests.processes import (
    REPO_ROOT,
    ProcessError,
    RedisHandle,
    ServerHandle,
    Supervisor,
    locust_command,
    user_class_for,
)
from loadtests.profile import Profile, ProfileError, load_profile
from loadtests.sampler import Sampler, redis_memory
from loadtests.verify import Verification, probe_auth, verify_server
from servers.settings import (
    ENV_ADMIN_TOKEN,
    ENV_COOKIE_KEY,
    ENV_JWT_KEY,
    ENV_JWT_KEY_FILE,
    REDIS_VARIANTS,
)
from servers.variants.tokens import ALGORITHM_OF_VARIANT, generate_key

RATE_MODEL = ("open: a fixed total request rate, shared by the Locust users with "
              "constant_throughput(target / users); requests are recorded only after warm-up")
POPULATION_COLUMNS = ("variant", "repetition", "size", "live_sessions", "seed_seconds",
                      "server_rss_bytes", "redis_used_memory_bytes", "redis_keys")
# Piped or logged, rich would fold the tables to 80 characters.
console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=130)


class Interrupted(Exception):
    """SIGINT or SIGTERM: stop, keep what was measured, say `incomplete`."""


class VariantFailed(Exception):
    """A variant's server (or its Redis) failed: reported, the run goes on without it."""


@dataclass(frozen=True)
class Pinning:
    server_cpus: frozenset[int]
    generator_cpus: frozenset[int]
    shared: bool  # only one core: server and generator could not be kept apart

    @classmethod
    def for_this_machine(cls) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) == 1:
            return cls(frozenset(cores), frozenset(cores), True)
        return cls(frozenset(cores[:1]), frozenset(cores[1:]), False)

    # Redis runs beside the generator, not the server: sharing one core with the server,
    # every GET waits for the scheduler to switch processes (milliseconds, measured), which
    # is a property of this two-core box, not of server-side sessions. Beside the
    # generator it behaves more like the separate host it would be in production.
    @property
    def redis_cpus(self) -> frozenset[int]:
        return self.generator_cpus

    def as_dict(self) -> dict[str, Any]:
        return {"server_cpus": sorted(self.server_cpus), "redis_cpus": sorted(self.redis_cpus),
                "generator_cpus": sorted(self.generator_cpus),
                "runner_cpus": sorted(self.generator_cpus), "shared": self.shared}


@dataclass
class Group:
    """One variant's servers (one, or replicas sharing keys and Redis) and their Redis."""

    variant: str
    servers: list[ServerHandle]
    redis: RedisHandle | None
    failed: str | None = None

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def check_alive(self) -> None:
        for server in self.servers:
            if not server.child.alive():
                raise VariantFailed(f"server {server.url} exited with code "
                                    f"{server.child.popen.returncode}: "
                                    f"{server.child.log_tail(5)}")
        if self.redis is not None and self.redis.child is not None and \
                not self.redis.child.alive():
            raise VariantFailed(f"its Redis ({self.redis.url}) exited with code "
                                f"{self.redis.child.popen.returncode}")


@dataclass
class RunFolder:
    path: Path
    profile: Profile
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, profile: Profile, argv: list[str]) -> RunFolder:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{stamp}-{profile.name}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = root / f"{stamp}-{profile.name}-{suffix}"
        path.mkdir()
        (path / "raw").mkdir()
        run = cls(path, profile)
        run.manifest = {
            "run_id": path.name,
            "profile": profile.name,
            "profile_source": profile.source,
            "status": "incomplete",  # until the end says otherwise: a killed run stays so
            "status_detail": "running",
            "started_at": now_iso(),
            "ended_at": None,
            "command": argv,
            "git": provenance.git_state(),
            "machine": provenance.machine(),
            "versions": provenance.versions(),
            "settings": {k: v for k, v in dataclasses.asdict(profile).items()
                         if k not in ("raw", "source")},
            "rate_model": RATE_MODEL,
            "failures": [],
        }
        run.save()
        latest = root / "latest"
        with contextlib.suppress(FileNotFoundError):
            latest.unlink()
        latest.symlink_to(path.name)
        return run

    def save(self) -> None:
        write_json(self.path / "manifest.json", self.manifest)

    def fail(self, experiment: str, variant: str, reason: str) -> None:
        self.manifest["failures"].append({"experiment": experiment, "variant": variant,
                                          "reason": reason, "at": now_iso()})
        self.save()
        console.print(f"[red]{experiment} / {variant}: {reason}[/red]")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Bench:
    """Runs a profile's experiments into one run folder."""

    def __init__(self, run: RunFolder, supervisor: Supervisor, pinning: Pinning,
                 progress: Progress, locust_processes: int = 1,
                 capacities: dict[str, Any] | None = None) -> None:
        self.run = run
        # calibration.json's per-variant figures: rates as fractions of capacity come from
        # here (replaced by this run's own when it runs the calibrate experiment).
        self.capacities = capacities
        self.locust_processes = locust_processes
        self.profile = run.profile
        self.supervisor = supervisor
        self.pinning = pinning
        self.progress = progress
        self.task = progress.add_task("starting", total=self.planned_measurements())
        self.secrets_dir = Path(tempfile.mkdtemp(prefix="authscale-keys-"))
        self.admin_token = secrets.token_hex(24)
        self.verified: dict[str, Verification] = {}
        self.measurements: list[dict[str, Any]] = []
        self.seed_seconds: dict[str, dict[int, float]] = {}

    # -- planning
    def planned_measurements(self) -> int:
        p = self.profile
        calibrate = p.calibrate
        # Steps up to max_rate, then a miss tried twice and each bisection tried twice.
        search = math.ceil(math.log(calibrate.max_rate / calibrate.start_rate,
                                    calibrate.growth)) + 2 + 2 * calibrate.refine_steps
        per_repetition = {
            "calibrate": len(p.variants_for("calibrate")) * (1 + search),  # at most
            "wire": 0,
            "latency": len(p.variants_for("latency")) * len(self.latency_rates()),
            "population": len(p.variants_for("population")) * len(p.population.sizes),
            "churn": len(p.variants_for("churn")),
            "replicas": len(p.variants_for("replicas")) * 2,
            "revocation": len(p.variants_for("revocation")),
            "primitives": 0,
            "outage": len(self.outage_variants()),
            "overload": 3 * len(p.variants_for("overload")),
        }
        counts = {e: n * (1 if e == "calibrate" else p.repetitions_for(e))
                  for e, n in per_repetition.items()}
        return sum(counts[e] for e in p.experiments)

    def describe(self, what: str) -> None:
        self.progress.update(self.task, description=what)
        if not console.is_terminal:  # CI, a log file: a plain line per step instead
            task = self.progress.tasks[0]
            console.print(f"[{task.completed:.0f}/{task.total:.0f} "
                          f"{task.elapsed or 0:.0f}s] {what}", highlight=False)

    # -- servers
    def server_env(self, variant: str) -> dict[str, str]:
        """Secrets for a variant's servers, shared by its replicas, never written to results."""
        env = {**os.environ, ENV_ADMIN_TOKEN: self.admin_token}
        if variant == "session-cookie":
            env[ENV_COOKIE_KEY] = self._secret(variant, lambda: Fernet.generate_key().decode())
        elif variant.startswith("jwt-"):
            algorithm = ALGORITHM_OF_VARIANT[variant]
            if algorithm == "HS256":
                env[ENV_JWT_KEY] = self._secret(variant, lambda: secrets.token_hex(32))
            else:
                path = self.secrets_dir / f"{variant}.pem"
                if not path.exists():
                    pem = generate_key(algorithm).private_bytes(
                        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption())
                    path.touch(mode=0o600)
                    path.write_bytes(pem)
                env[ENV_JWT_KEY_FILE] = str(path)
        return env

    def _secret(self, variant: str, make: Any) -> str:
        path = self.secrets_dir / variant
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(make())
        return path.read_text()

    def start_group(self, variant: str, count: int = 1, extra: tuple[str, ...] = ()) -> Group:
        redis = self.supervisor.redis(self.pinning.redis_cpus) if variant in REDIS_VARIANTS \
            else None
        group = Group(variant, [], redis)
        extra = ("--users", str(self.profile.login_users), *extra)
        try:
            for _ in range(count):
                group.servers.append(self.supervisor.server(
                    variant, redis.url if redis else None, self.pinning.server_cpus,
                    env=self.server_env(variant), extra=extra))
        except ProcessError as exc:
            self.stop_group(group)
            raise VariantFailed(f"could not start: {exc}") from exc
        return group

    def stop_group(self, group: Group) -> None:
        for server in group.servers:
            self.supervisor.stop(server.child)
        if group.redis is not None:
            self.supervisor.stop_redis(group.redis)

    def verify(self, group: Group) -> None:
        for url in group.urls:
            result = verify_server(url, group.variant)
            self.verified.setdefault(group.variant, result)
            if not result.ok:
                self.verified[group.variant] = result
                raise VariantFailed("verification failed: " + "; ".join(result.problems))
        write_json(self.run.path / "verify.json",
                   {v: r.as_dict() for v, r in self.verified.items()})

    @contextlib.contextmanager
    def groups(self, experiment: str, variants: tuple[str, ...], count: int = 1,
               extra: tuple[str, ...] = ()) -> Iterator[dict[str, Group]]:
        """Start (and verify) every variant's group; a failed one is reported and left out."""
        started: dict[str, Group] = {}
        try:
            for variant in variants:
                self.describe(f"{experiment} · starting {variant}")
                try:
                    group = self.start_group(variant, count, extra)
                except VariantFailed as exc:
                    self.run.fail(experiment, variant, str(exc))
                    continue
                started[variant] = group
                try:
                    self.verify(group)
                except VariantFailed as exc:
                    group.failed = str(exc)
                    self.run.fail(experiment, variant, str(exc))
            yield started
        finally:
            for group in started.values():
                self.stop_group(group)

    # -- one measurement
    def measure(self, group: Group, experiment: str, label: str, repetition: int, *,
                scenario: str, rate: float, users: int, duration: float,
                extra: tuple[str, ...] = (), info: dict[str, Any] | None = None,
                during: Callable[[float], None] | None = None) -> dict[str, Any] | None:
        """One Locust run against a group, sampled; returns its record (None if skipped).

        `during`, if given, is called about ten times a second with the seconds since Locust
        started (the outage experiment stops and restarts Redis from there).
        """
        variant = group.variant
        self.describe(f"{experiment} · {variant} · {label} · rep {repetition}")
        # A server that died since its last measurement is not measured.
        if not group.failed:
            self.check_alive(group, experiment, f"before {label} rep {repetition}")
        if group.failed:
            self.progress.advance(self.task)
            return None
        folder = self.run.path / "raw" / experiment / variant / f"{label}-rep{repetition}"
        folder.mkdir(parents=True, exist_ok=True)
        warmup = self.profile.warmup_s
        argv = locust_command(
            group.urls[0], scenario=scenario, users=users, spawn_rate=users,
            duration=duration, warmup=warmup, csv_prefix=folder / "locust",
            target_rps=rate, user_class=user_class_for(variant),
            processes=self.locust_processes,
            extra=["--login-users", str(self.profile.login_users), *extra])
        record: dict[str, Any] = {
            "experiment": experiment, "variant": variant, "label": label,
            "repetition": repetition, "scenario": scenario, "target_rps": rate,
            "rate_model": "open" if rate > 0 else "closed", "users": users,
            "warmup_s": warmup, "duration_s": duration, "hosts": group.urls,
            "pinning": self.pinning.as_dict(), "started_at": now_iso(),
            "folder": str(folder.relative_to(self.run.path)), **(info or {}),
        }
        locust = self.supervisor.spawn(f"locust {variant}", argv, folder / "locust.log",
                                       self.pinning.generator_cpus)
        samplers = [Sampler(folder / f"samples-{i}.csv", variant, server.child.pid, server.url,
                            group.redis.client() if group.redis and i == 0 else None,
                            generator_pid=locust.pid if i == 0 else None)
                    for i, server in enumerate(group.servers)]
        spawned = time.monotonic()
        deadline = spawned + warmup + duration + 60
        try:
            with contextlib.ExitStack() as stack:
                for sampler in samplers:
                    stack.enter_context(sampler)
                while locust.alive() and time.monotonic() < deadline:
                    if during is not None:
                        during(time.monotonic() - spawned)
                    time.sleep(0.1)
        finally:
            if locust.alive():
                record["error"] = "Locust did not finish in time"
            record["locust_exit_code"] = self.supervisor.stop(locust)
            record["ended_at"] = now_iso()
            write_json(folder / "measurement.json", record)
        final = folder / "locust_final.json"
        if final.exists():
            entries = json.loads(final.read_text())
            record["requests"] = sum(e["num_requests"] for e in entries)
            record["failures"] = sum(e["num_failures"] for e in entries)
            record["status"] = "ok"
        else:
            record["status"] = "failed"
            record.setdefault("error", f"Locust wrote no results: {locust.log_tail(5)}")
        write_json(folder / "measurement.json", record)
        self.measurements.append(record)
        self.progress.advance(self.task)
        self.check_alive(group, experiment, f"during {label} rep {repetition}")
        return record

    def measured(self, record: dict[str, Any] | None) -> Measurement | None:
        """A measurement's raw files, read the analysis's way (None if it was skipped)."""
        return Measurement(self.run.path / record["folder"], record) if record else None

    def check_alive(self, group: Group, experiment: str, when: str) -> None:
        """Mark the group failed, and report it, if a server or its Redis is gone."""
        try:
            group.check_alive()
        except VariantFailed as exc:
            group.failed = str(exc)
            self.run.fail(experiment, group.variant, f"{exc} ({when})")

    # -- rates
    def latency_rates(self) -> tuple[float, ...]:
        """With a calibration, each of the profile's `fractions` of the lowest capacity among
        the variants measured: the same rates for every variant, each within every variant's
        capacity. Without one (or without fractions), the profile's fixed `rates`.

        The other experiments measure memory, churn and revocation, not load: they keep their
        fixed, low rates.
        """
        spec = self.profile.latency
        known = [self.capacities[v]["capacity_rps"] for v in self.profile.variants_for("latency")
                 if self.capacities and self.capacities.get(v, {}).get("capacity_rps", 0) > 0]
        if not spec.fractions or not known:
            return spec.rates
        return tuple(dict.fromkeys(max(10.0, calibration.tens(f * min(known)))
                                   for f in spec.fractions))

    # -- the experiments
    def calibrate(self) -> None:
        """Each variant's in-server auth cost and capacity (see loadtests.calibrate)."""
        spec = self.profile.calibrate
        self.primitives()
        found: dict[str, Any] = {}
        for variant in self.profile.variants_for("calibrate"):
            with self.groups("calibrate", (variant,)) as groups:
                group = groups.get(variant)
                if group is None or group.failed:
                    continue
                self.describe(f"calibrate · {variant} · auth cost, one request at a time")
                probe = probe_auth(group.urls[0], variant, spec.probe_requests)

                def step(rate: float, group: Group = group, label: str = "c",
                         duration: float = spec.duration_s) -> calibration.Step:
                    record = self.measure(group, "calibrate", f"{label}{rate:g}", 1,
                                          scenario="browse", rate=rate, users=spec.users,
                                          duration=duration)
                    measurement = self.measured(record)
                    row = (measurement.row(self.run.path)
                           if measurement and measurement.record["status"] == "ok" else None)
                    return calibration.Step.from_row(rate, row, spec.p99_ms)

                cpu = calibration.cpu_cost(step(spec.cpu_rate, label="cpu",
                                                duration=spec.cpu_duration_s))
                found[variant] = {**probe, **cpu, **calibration.search_capacity(step, spec)}
        self.capacities = found
        result = {
            "created_at": now_iso(), "run_id": self.run.path.name,
            "p99_bound_ms": spec.p99_ms, "achieved_share": calibration.ACHIEVED_SHARE,
            "pinning": self.pinning.as_dict(), "machine": self.run.manifest["machine"],
            "git": self.run.manifest["git"],
            "primitives_us": calibration.read_primitives(self.primitives_csv),
            "variants": found,
        }
        result["targets"] = calibration.targets(found, result["primitives_us"])
        write_json(self.run.path / calibration.CALIBRATION_FILE, result)
        self.run.manifest["rates_from"] = {"calibration": calibration.CALIBRATION_FILE,
                                           "created_at": result["created_at"]}
        self.run.save()

    def wire(self) -> None:
        """Bytes each credential adds to a request, from the verification of each variant
        (servers are started only for variants no other experiment verified)."""
        missing = tuple(v for v in self.profile.variants if v not in self.verified)
        if missing:
            with self.groups("wire", missing):
                pass
        rows = [{"variant": v, "header_bytes": r.header_bytes,
                 "credential_bytes": r.credential_bytes, "set_cookie_bytes": r.set_cookie_bytes,
                 "login_response_bytes": r.login_response_bytes}
                for v, r in self.verified.items() if r.ok]
        write_csv(self.run.path / "raw" / "wire.csv", ("variant", "header_bytes",
                  "credential_bytes", "set_cookie_bytes", "login_response_bytes"), rows)

    @property
    def primitives_csv(self) -> Path:
        return self.run.path / "raw" / "primitives.csv"

    def primitives(self) -> None:
        """Each variant's primitive alone in a tight loop, on the server's core (once)."""
        if self.primitives_csv.exists():
            return
        self.describe("primitives · timing each variant's primitive alone")
        redis = self.supervisor.redis(self.pinning.redis_cpus)
        try:
            out = self.primitives_csv
            child = self.supervisor.spawn(
                "primitives", [sys.executable, "-m", "loadtests.primitives", "--redis-url",
                               redis.url, "--out", str(out)],
                self.run.path / "logs" / "primitives.log", self.pinning.server_cpus)
            deadline = time.monotonic() + 120
            while child.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            code = self.supervisor.stop(child)
            if code != 0 or not out.exists():
                self.run.fail("primitives", "all", f"exit code {code}: {child.log_tail(5)}")
        finally:
            self.supervisor.stop_redis(redis)

    def latency(self) -> None:
        spec = self.profile.latency
        with self.groups("latency", self.profile.variants_for("latency")) as groups:
            for rep in range(1, self.profile.repetitions + 1):
                for rate in self.latency_rates():
                    for variant in self.profile.variants_for("latency"):  # interleaved
                        if variant not in groups:
                            self.progress.advance(self.task)
                            continue
                        self.measure(groups[variant], "latency", f"r{rate:g}", rep,
                                     scenario="browse", rate=rate, users=spec.users,
                                     duration=spec.duration_s)

    def population(self) -> None:
        spec = self.profile.population
        rows: list[dict[str, Any]] = []
        path = self.run.path / "raw" / "population" / "population.csv"
        for variant in self.profile.variants_for("population"):
            for rep in range(1, self.profile.repetitions_for("population") + 1):
                # A fresh server and Redis per variant: the memory figures are its alone.
                with self.groups("population", (variant,)) as groups:
                    group = groups.get(variant)
                    live = 0
                    for size in spec.sizes:
                        if group is None or group.failed:
                            self.progress.advance(self.task)
                            continue
                        row = self.grow_population(group, size - live, size, rep)
                        live = int(row["live_sessions"])
                        rows.append(row)
                        write_csv(path, POPULATION_COLUMNS, rows)
                        self.measure(group, "population", f"n{size}", rep,
                                     scenario="population", rate=spec.rate, users=spec.users,
                                     duration=spec.duration_s,
                                     extra=("--pool-size", str(spec.pool_size)),
                                     info={"population": size,
                                           "live_sessions_before": live})

    def grow_population(self, group: Group, add: int, size: int, rep: int) -> dict[str, Any]:
        url = group.urls[0]
        request = urllib.request.Request(
            url + "/admin/seed", method="POST",
            data=json.dumps({"count": max(0, add)}).encode(),
            headers={"Content-Type": "application/json", "X-Admin-Token": self.admin_token})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as answer:
            seeded = json.load(answer)
        seconds = time.perf_counter() - started
        self.seed_seconds.setdefault(group.variant, {})[size] = seconds
        time.sleep(0.5)  # let the allocator settle before reading memory
        server = psutil.Process(group.servers[0].child.pid)
        row: dict[str, Any] = {"variant": group.variant, "repetition": rep, "size": size,
                               "live_sessions": seeded["live_sessions"],
                               "seed_seconds": round(seconds, 4),
                               "server_rss_bytes": server.memory_info().rss}
        if group.redis is not None:
            row["redis_used_memory_bytes"], row["redis_keys"] = redis_memory(
                group.redis.client())
        return row

    def churn(self) -> None:
        spec = self.profile.churn
        variants = self.profile.variants_for("churn")
        extra = ("--session-ttl", str(spec.session_ttl), "--token-ttl", str(spec.session_ttl))
        with self.groups("churn", variants, extra=extra) as groups:
            for rep in range(1, self.profile.repetitions_for("churn") + 1):
                for variant in variants:
                    if variant not in groups:
                        self.progress.advance(self.task)
                        continue
                    self.measure(groups[variant], "churn", "churn", rep, scenario="churn",
                                 rate=spec.rate, users=spec.users, duration=spec.duration_s,
                                 info={"session_ttl": spec.session_ttl})

    def replicas(self) -> None:
        spec = self.profile.replicas
        variants = self.profile.variants_for("replicas")
        with self.groups("replicas", variants, count=spec.replicas) as groups:
            for rep in range(1, self.profile.repetitions_for("replicas") + 1):
                for routing in ("random", "sticky"):
                    for variant in variants:
                        if variant not in groups:
                            self.progress.advance(self.task)
                            continue
                        group = groups[variant]
                        extra = ("--hosts", ",".join(group.urls),
                                 *(("--sticky",) if routing == "sticky" else ()))
                        self.measure(group, "replicas", routing, rep, scenario="replicas",
                                     rate=spec.rate, users=spec.users, duration=spec.duration_s,
                                     extra=extra, info={"routing": routing,
                                                        "replicas": spec.replicas})

    def revocation(self) -> None:
        spec = self.profile.revocation
        for variant in self.profile.variants_for("revocation"):
            with self.groups("revocation", (variant,), count=spec.replicas) as groups:
                group = groups.get(variant)
                for rep in range(1, self.profile.repetitions_for("revocation") + 1):
                    if group is None:
                        self.progress.advance(self.task)
                        continue
                    self.measure(group, "revocation", "revocation", rep, scenario="revocation",
                                 rate=spec.rate, users=spec.users, duration=spec.duration_s,
                                 extra=("--hosts", ",".join(group.urls),
                                        "--revocation-window", str(spec.window_s)),
                                 info={"replicas": spec.replicas, "window_s": spec.window_s})

    def outage_variants(self) -> tuple[str, ...]:
        return tuple(v for v in self.profile.variants_for("outage") if v in REDIS_VARIANTS)

    def outage(self) -> None:
        """Redis stopped under load and started again on its port (see loadtests.faults)."""
        spec = self.profile.outage
        rows: list[dict[str, Any]] = []
        for variant in self.outage_variants():
            with self.groups("outage", (variant,)) as groups:
                group = groups.get(variant)
                if group is None or group.failed or group.redis is None:
                    self.progress.advance(self.task)
                    continue
                clock = faults.OutageClock(spec.stop_after_s, spec.down_s)
                port = group.redis.port

                def during(elapsed: float, group: Group = group, clock: faults.OutageClock = clock,
                           port: int = port) -> None:
                    if clock.due_to_stop(elapsed) and group.redis is not None:
                        self.describe(f"outage · {group.variant} · Redis stopped")
                        self.supervisor.stop_redis(group.redis)
                        clock.stopped_at = time.time()
                    elif clock.due_to_start():
                        group.redis = self.supervisor.redis(self.pinning.redis_cpus, port)
                        clock.ready_at = time.time()
                        self.describe(f"outage · {group.variant} · Redis back")

                probe = faults.Probe(group.urls[0], variant)
                probe.start()
                try:
                    record = self.measure(group, "outage", "outage", 1, scenario="browse",
                                          rate=spec.rate, users=spec.users,
                                          duration=spec.duration_s, during=during,
                                          info={"stop_after_s": spec.stop_after_s,
                                                "down_s": spec.down_s})
                finally:
                    probe.stop()
                probe.write(self.run.path / "raw" / "outage" / variant / "outage-rep1" /
                            "probe.csv")
                measurement = self.measured(record)
                samples = measurement.samples if measurement else pd.DataFrame()
                rows.append(faults.outage_row(variant, clock, probe.rows, record, samples,
                                              group.servers[0].child.alive()))
                write_csv(self.run.path / "raw" / "outage" / "outage.csv",
                          faults.OUTAGE_COLUMNS, rows)

    def overload(self) -> None:
        """`factor` x the calibrated capacity, between two calm windows."""
        spec = self.profile.overload
        users = self.profile.calibrate.users
        rows: list[dict[str, Any]] = []
        for variant in self.profile.variants_for("overload"):
            capacity = ((self.capacities or {}).get(variant) or {}).get("capacity_rps", 0)
            if not capacity:
                self.run.fail("overload", variant, "no calibrated capacity: run make calibrate "
                              "first, or list calibrate in the profile")
                self.progress.advance(self.task, 3)
                continue
            calm = calibration.tens(spec.baseline_fraction * capacity)
            heavy = calibration.tens(spec.factor * capacity)
            with self.groups("overload", (variant,)) as groups:
                group = groups.get(variant)
                if group is None:
                    self.progress.advance(self.task, 3)
                    continue
                measured = {}
                for label, rate, n, seconds in (("before", calm, users, spec.baseline_s),
                                                ("overload", heavy, spec.users, spec.duration_s),
                                                ("after", calm, users, spec.baseline_s)):
                    measurement = self.measured(self.measure(
                        group, "overload", label, 1, scenario="browse", rate=rate, users=n,
                        duration=seconds, info={"capacity_rps": capacity, "factor": spec.factor}))
                    if measurement is not None:
                        measured[label] = measurement
                rows.append(faults.overload_row(variant, capacity, heavy, spec.users, measured,
                                                self.run.path, group.servers[0].child.alive()))
                write_csv(self.run.path / "raw" / "overload" / "overload.csv",
                          faults.OVERLOAD_COLUMNS, rows)

    def run_all(self) -> None:
        for experiment in self.profile.experiments:
            getattr(self, experiment)()
        self.progress.update(self.task, description="done")

    def close(self) -> None:
        shutil.rmtree(self.secrets_dir, ignore_errors=True)


def build_report(run_dir: Path) -> bool:
    """The report hook: `python -m analysis RUN` when the analysis package is there."""
    if not (REPO_ROOT / "analysis" / "__main__.py").exists():
        console.print("no analysis package yet: raw data kept, no report built")
        return False
    done = subprocess.run([sys.executable, "-m", "analysis", str(run_dir)], cwd=REPO_ROOT)
    return done.returncode == 0


def summary_table(run: RunFolder, measurements: list[dict[str, Any]]) -> Table:
    table = Table(title=f"authscale run {run.path.name} ({run.manifest['status']})")
    for column in ("experiment", "variant", "measurements", "requests", "failures",
                   "failed runs"):
        table.add_column(column, justify="right" if column not in ("experiment", "variant")
                         else "left")
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in measurements:
        keyed.setdefault((m["experiment"], m["variant"]), []).append(m)
    for (experiment, variant), items in keyed.items():
        table.add_row(experiment, variant, str(len(items)),
                      str(sum(m.get("requests", 0) for m in items)),
                      str(sum(m.get("failures", 0) for m in items)),
                      str(sum(m["status"] != "ok" for m in items)))
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
    path = Path(choice) if choice else results / calibration.CALIBRATION_FILE
    if not path.exists():
        if choice:
            raise ProfileError(f"--calibration {choice}: no such file")
        return None, {"calibration": None, "reason": f"no {path.name} in {results}"}
    try:
        data = json.loads(path.read_text())
        variants = data["variants"]
    except (ValueError, KeyError) as exc:
        raise ProfileError(f"{path}: not a calibration file ({exc})") from None
    same = all(data.get("machine", {}).get(k) == machine.get(k)
               for k in ("cpu_model", "logical_cores"))
    if not same and not choice:
        return None, {"calibration": None,
                      "reason": f"{path} was made on another machine"}
    return variants, {"calibration": str(path), "created_at": data.get("created_at")}


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
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
        write_text(run.path / calibration.CALIBRATION_FILE,
                   Path(rates_from["calibration"]).read_text())
    run.manifest["locust_processes"] = args.processes
    # The runner itself (sampling, bookkeeping) stays off the server's core.
    os.sched_setaffinity(0, pinning.generator_cpus)
    supervisor = Supervisor(run.path / "logs")
    (run.path / "logs").mkdir()
    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGINT, raise_interrupted)
    started = time.monotonic()
    bench: Bench | None = None
    status, detail = "failed", "did not start"
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("remaining"), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            bench = Bench(run, supervisor, pinning, progress, args.processes, capacities)
            run.manifest["measurements_planned"] = bench.planned_measurements()
            run.save()
            bench.run_all()
        failed = [m for m in bench.measurements if m["status"] != "ok"]
        if run.manifest["failures"] or failed:
            status = "incomplete"
            detail = (f"{len(run.manifest['failures'])} component failure(s), "
                      f"{len(failed)} failed measurement(s)")
        else:
            status, detail = "complete", "all planned measurements done"
    except Interrupted as exc:
        status, detail = "incomplete", f"interrupted by {exc}"
    except Exception as exc:
        status, detail = ("incomplete" if bench and bench.measurements else "failed",
                          f"{type(exc).__name__}: {exc}")
        console.print_exception()
    finally:
        # From here on a second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        measurements = bench.measurements if bench else []
        if bench is not None:
            bench.close()
            run.manifest["measurements_done"] = len(measurements)
            run.manifest["seed_seconds"] = {
                v: {str(k): round(s, 3) for k, s in sizes.items()}
                for v, sizes in bench.seed_seconds.items()}
        run.manifest.update(status=status, status_detail=detail, ended_at=now_iso(),
                            wall_seconds=round(time.monotonic() - started, 1))
        run.save()
    console.print(summary_table(run, measurements))
    for table in faults.summary_tables(run.path):
        console.print(table)
    # The report answers the claim from the latency experiment on; a calibration or a soak
    # alone has its own tables above.
    if measurements and not args.no_report and status != "failed" and \
            "latency" in profile.experiments:
        build_report(run.path)
    console.print(f"{status}: {detail}; results in {run.path}")
    return {"complete": 0, "incomplete": 1}.get(status, 2) if "interrupted" not in detail \
        else 130


if __name__ == "__main__":
    sys.exit(main())
