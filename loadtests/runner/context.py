"""What every experiment runs on: pinned cores, variant groups (servers and their Redis, started
and verified), secrets, progress, and the one `measure`: a Locust run, sampled, recorded.

The experiments (loadtests.experiments) say what to measure; this module says how.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from rich.progress import Progress

from analysis.load import Measurement, MeasurementRecord
from loadtests.atomic import write_json
from loadtests.runner import loadgen
from loadtests.runner.folder import RunFolder, now_iso
from loadtests.runner.processes import (
    ProcessError,
    RedisHandle,
    ServerHandle,
    Supervisor,
    locust_command,
)
from loadtests.runner.sampler import Sampler
from loadtests.runner.tables import console
from loadtests.runner.verify import Verification, verify_server
from loadtests.swarm.credentials import user_class_for
from servers.variants.registry import ENV_ADMIN_TOKEN, variant
from servers.variants.tokens import generate_key

# The fast generator's users per variant: distinct real credentials, taken in turn.
LOADGEN_USERS = 1000
LOADGEN_OUTPUT = "loadgen_requests.txt"
# Seconds between samples: the fast generator's windows are a few seconds long, and its
# CPU per request is read between two samples around them.
SAMPLE_SECONDS = {"locust": 1.0, loadgen.NAME: 0.5}


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


@dataclass(frozen=True)
class Planned:
    """One measurement an experiment plans: against which variant, what load, how long, and
    with which generator: Locust (a scenario, `users` simulated users) or the fast
    generator (`loadgen`: the scenario is "read", `users` its connections; rate 0 is
    closed loop)."""

    experiment: str
    variant: str
    label: str
    repetition: int
    scenario: str
    rate: float
    users: int
    duration: float
    extra: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    generator: str = "locust"
    warmup: float | None = None  # None: the profile's
    logins: loadgen.Logins | None = None  # the fast generator's login churn, if any


@dataclass
class Group:
    """One variant's servers (one, or replicas sharing keys and Redis) and their Redis."""

    variant: str
    servers: list[ServerHandle]
    redis: RedisHandle | None
    failed: str | None = None
    # The fast generator's credentials file: real users logged in once (see credentials).
    credentials: Path | None = None

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


class Context:
    """One run in progress: its folder, its processes, what it has measured so far."""

    def __init__(self, run: RunFolder, supervisor: Supervisor, pinning: Pinning,
                 progress: Progress, planned: int, locust_processes: int = 1,
                 capacities: dict[str, Any] | None = None) -> None:
        self.run = run
        self.profile = run.profile
        self.supervisor = supervisor
        self.pinning = pinning
        self.progress = progress
        self.task = progress.add_task("starting", total=planned)
        self.locust_processes = locust_processes
        # calibration.json's per-variant figures: rates as fractions of capacity come from
        # here (replaced by this run's own when it runs the calibrate experiment).
        self.capacities = capacities
        self.secrets_dir = Path(tempfile.mkdtemp(prefix="authscale-keys-"))
        self.admin_token = secrets.token_hex(24)
        self.verified: dict[str, Verification] = {}
        self.records: list[MeasurementRecord] = []
        # Measurements made without `measure` (the duet's windows, the instruction
        # counts): how many were completed.
        self.done_elsewhere = 0
        self.seed_seconds: dict[str, dict[int, float]] = {}

    # -- progress
    def describe(self, what: str) -> None:
        self.progress.update(self.task, description=what)
        if not console.is_terminal:  # CI, a log file: a plain line per step instead
            task = self.progress.tasks[0]
            console.print(f"[{task.completed:.0f}/{task.total:.0f} "
                          f"{task.elapsed or 0:.0f}s] {what}", highlight=False)

    def skip(self, count: int = 1) -> None:
        """Planned measurements that will not run (their variant failed)."""
        self.progress.advance(self.task, count)

    def done(self) -> None:
        """A planned measurement made without `measure` was completed."""
        self.done_elsewhere += 1
        self.progress.advance(self.task)

    def fail(self, experiment: str, variant_name: str, reason: str) -> None:
        self.run.fail(experiment, variant_name, reason)
        console.print(f"[red]{experiment} / {variant_name}: {reason}[/red]")

    # -- servers
    def secret_file(self, variant_name: str) -> Path:
        """Where a variant's secret is kept for this run (outside the results), made when its
        first server starts: the fast generator mints HS256 tokens with it."""
        return self.secrets_dir / variant_name

    def server_env(self, variant_name: str) -> dict[str, str]:
        """Secrets for a variant's servers, shared by its replicas, never written to results."""
        env = {**os.environ, ENV_ADMIN_TOKEN: self.admin_token}
        spec = variant(variant_name)
        if spec.secret_env is None:
            return env
        path = self.secret_file(variant_name)
        if not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(new_secret(spec.secret, spec.algorithm))
        env[spec.secret_env] = str(path) if spec.secret == "jwt_private_key" \
            else path.read_text()
        return env

    def start_group(self, variant_name: str, count: int = 1,
                    extra: tuple[str, ...] = ()) -> Group:
        redis = self.supervisor.redis(self.pinning.redis_cpus) \
            if variant(variant_name).needs_redis else None
        group = Group(variant_name, [], redis)
        extra = ("--users", str(self.profile.login_users), *extra)
        try:
            for _ in range(count):
                group.servers.append(self.supervisor.server(
                    variant_name, redis.url if redis else None, self.pinning.server_cpus,
                    env=self.server_env(variant_name), extra=extra))
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
            for name in variants:
                self.describe(f"{experiment} · starting {name}")
                try:
                    group = self.start_group(name, count, extra)
                except VariantFailed as exc:
                    self.fail(experiment, name, str(exc))
                    continue
                started[name] = group
                try:
                    self.verify(group)
                except VariantFailed as exc:
                    group.failed = str(exc)
                    self.fail(experiment, name, str(exc))
            yield started
        finally:
            for group in started.values():
                self.stop_group(group)

    def check_alive(self, group: Group, experiment: str, when: str) -> None:
        """Mark the group failed, and report it, if a server or its Redis is gone."""
        try:
            group.check_alive()
        except VariantFailed as exc:
            group.failed = str(exc)
            self.fail(experiment, group.variant, f"{exc} ({when})")

    # -- measuring
    def credentials(self, group: Group) -> Path:
        """A file of real credentials for the fast generator: LOADGEN_USERS distinct users
        (at most the server's user table) logged in once per group, one header each."""
        if group.credentials is None:
            path = self.secrets_dir / f"credentials-{group.variant}-{group.servers[0].port}.txt"
            users = range(1, min(LOADGEN_USERS, self.profile.login_users) + 1)
            loadgen.write_credentials(group.urls[0], group.variant, users, path)
            group.credentials = path
        return group.credentials

    def measure_each(self, plan: list[Planned], groups: dict[str, Group]) -> None:
        """Every planned measurement in order; those of a variant that did not start are
        skipped."""
        for planned in plan:
            group = groups.get(planned.variant)
            if group is None:
                self.skip()
                continue
            self.measure(group, planned)

    def measure(self, group: Group, planned: Planned, *, info: dict[str, Any] | None = None,
                during: Callable[[float], bool | None] | None = None,
                credentials: loadgen.Credentials | None = None
                ) -> MeasurementRecord | None:
        """One run of the planned generator against a group, sampled; its record (None if
        skipped).

        `info` adds details known only now (the live sessions before it). `during`, if
        given, is called about ten times a second with the seconds since the generator
        started (the outage experiment stops and restarts Redis from there); if it returns
        True, the fast generator ends its window there (SIGUSR1: what it measured so far is
        kept, the window as long as it ran). `credentials` are the fast generator's
        (default: the group's logged-in users, `credentials()`).
        """
        label, repetition = planned.label, planned.repetition
        self.describe(f"{planned.experiment} · {group.variant} · {label} · rep {repetition}")
        # A server that died since its last measurement is not measured.
        if not group.failed:
            self.check_alive(group, planned.experiment, f"before {label} rep {repetition}")
        if group.failed:
            self.skip()
            return None
        folder = self.run.path / "raw" / planned.experiment / group.variant / \
            f"{label}-rep{repetition}"
        folder.mkdir(parents=True, exist_ok=True)
        warmup = self.profile.warmup_s if planned.warmup is None else planned.warmup
        record = MeasurementRecord(
            experiment=planned.experiment, variant=group.variant, label=label,
            repetition=repetition, scenario=planned.scenario, target_rps=planned.rate,
            rate_model="open" if planned.rate > 0 else "closed", users=planned.users,
            warmup_s=warmup, duration_s=planned.duration, hosts=group.urls,
            pinning=self.pinning.as_dict(), started_at=now_iso(),
            folder=str(folder.relative_to(self.run.path)), generator=planned.generator,
            info={**planned.info, **(info or {})})
        if planned.generator == loadgen.NAME:
            argv = loadgen.command(
                group.servers[0].port, credentials or self.credentials(group),
                folder / LOADGEN_OUTPUT, rate=planned.rate, connections=planned.users,
                duration=planned.duration, warmup=warmup, logins=planned.logins)
        else:
            hosts = ("--hosts", ",".join(group.urls)) if len(group.urls) > 1 else ()
            argv = locust_command(
                group.urls[0], scenario=planned.scenario, users=planned.users,
                spawn_rate=planned.users, duration=planned.duration, warmup=warmup,
                csv_prefix=folder / "locust", target_rps=planned.rate,
                user_class=user_class_for(group.variant), processes=self.locust_processes,
                extra=["--login-users", str(self.profile.login_users), *hosts,
                       *planned.extra])
        started = time.time()
        generator = self.supervisor.spawn(f"{planned.generator} {group.variant}", argv,
                                       folder / f"{planned.generator}.log",
                                       self.pinning.generator_cpus)
        samplers = [Sampler(folder / f"samples-{i}.csv", group.variant, server.child.pid,
                            server.url,
                            group.redis.client() if group.redis and i == 0 else None,
                            generator_pid=generator.pid if i == 0 else None,
                            interval=SAMPLE_SECONDS[planned.generator])
                    for i, server in enumerate(group.servers)]
        spawned = time.monotonic()
        deadline = spawned + warmup + planned.duration + 60
        try:
            with contextlib.ExitStack() as stack:
                for sampler in samplers:
                    stack.enter_context(sampler)
                ended = False
                while generator.alive() and time.monotonic() < deadline:
                    if during is not None and during(time.monotonic() - spawned) \
                            and not ended and planned.generator == loadgen.NAME:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(generator.pid, signal.SIGUSR1)
                        ended = True
                        record.info["ended_early_s"] = round(time.monotonic() - spawned, 2)
                    time.sleep(0.1)
        finally:
            if generator.alive():
                record.error = f"{planned.generator} did not finish in time"
            record.generator_exit_code = self.supervisor.stop(generator)
            record.ended_at = now_iso()
            write_json(folder / "measurement.json", record.as_dict())
        final = folder / "locust_final.json"
        if planned.generator == loadgen.NAME:
            self.read_load(record, folder, started)
        elif final.exists():
            entries = json.loads(final.read_text())
            record.requests = sum(e["num_requests"] for e in entries)
            record.failures = sum(e["num_failures"] for e in entries)
            record.status = "ok"
        else:
            record.status = "failed"
            record.error = record.error or f"Locust wrote no results: {generator.log_tail(5)}"
        write_json(folder / "measurement.json", record.as_dict())
        self.records.append(record)
        self.progress.advance(self.task)
        self.check_alive(group, planned.experiment, f"during {label} rep {repetition}")
        return record

    @staticmethod
    def read_load(record: MeasurementRecord, folder: Path, started: float) -> None:
        """The fast generator's output into the measurement's files and record: requests
        due in the window, errors, and (in its info) those unanswered at its end and those
        sent late. The per-request output is kept, compressed."""
        output = folder / LOADGEN_OUTPUT
        if record.generator_exit_code != 0 or not output.exists():
            record.status = "failed"
            record.error = record.error or f"the load generator exited with " \
                                            f"{record.generator_exit_code}"
            return
        result = loadgen.read_result(output)
        result.write(folder / loadgen.NAME, started)
        with output.open("rb") as raw, gzip.open(f"{output}.gz", "wb") as packed:
            shutil.copyfileobj(raw, packed)
        output.unlink()
        record.requests = result.answered + result.unanswered
        record.failures = result.errors
        record.info.update(unanswered=result.unanswered, late=result.late,
                           served=result.served, generator_cpu_seconds=result.cpu_seconds)
        record.status = "ok"

    def measured(self, record: MeasurementRecord | None) -> Measurement | None:
        """A measurement's raw files, read the analysis's way (None if it was skipped)."""
        return Measurement(self.run.path / record.folder, record) if record else None

    def close(self) -> None:
        shutil.rmtree(self.secrets_dir, ignore_errors=True)


def new_secret(kind: str, algorithm: str | None) -> bytes:
    """A fresh secret of the registry's kind: a Fernet key, an HS256 secret, a PEM key."""
    if kind == "cookie_key":
        return Fernet.generate_key()
    if kind == "jwt_secret":
        return secrets.token_hex(32).encode()
    assert algorithm is not None
    return bytes(generate_key(algorithm).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
