"""Bench profiles: TOML files naming variants, rates, durations, repetitions and sizes.

`make bench PROFILE=quick` reads loadtests/profiles/quick.toml; PROFILE=path/to/mine.toml
reads that file. Every mistake is reported as one line naming the key to fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from servers.settings import VARIANTS

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
# "primitives" times each variant's primitive alone; "wire" records each credential's bytes
# (from the verification every server gets before load).
EXPERIMENTS = ("calibrate", "latency", "population", "churn", "replicas", "revocation", "wire",
               "primitives", "outage", "overload")
# Calibration takes minutes and the fault experiments measure no design: a profile runs
# them only when it lists them (calibrate, full, soak).
DEFAULT_EXPERIMENTS = tuple(e for e in EXPERIMENTS
                            if e not in ("calibrate", "outage", "overload"))


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line naming what to change."""


@dataclass(frozen=True)
class Calibrate:
    """The capacity search: open-model steps from start_rate, times growth while they pass,
    then `refine_steps` bisections between the last pass and the first miss."""

    p99_ms: float = 20.0
    start_rate: float = 400.0
    growth: float = 1.5
    max_rate: float = 4000.0
    refine_steps: int = 2
    users: int = 8
    duration_s: float = 3.0
    probe_requests: int = 2000
    # Server CPU per request is measured at this one rate for every variant.
    cpu_rate: float = 2000.0
    cpu_duration_s: float = 5.0
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Latency:
    rates: tuple[float, ...]
    users: int = 50
    duration_s: float = 4.0
    # With a calibration: each rate a fraction of the lowest capacity of the variants measured
    # (so every variant gets the same rates, all within its capacity); `rates` without one.
    fractions: tuple[float, ...] = ()


@dataclass(frozen=True)
class Population:
    sizes: tuple[int, ...]
    variants: tuple[str, ...] = ()
    rate: float = 300.0
    users: int = 20
    duration_s: float = 2.0
    pool_size: int = 500
    repetitions: int = 1


@dataclass(frozen=True)
class Churn:
    rate: float = 300.0
    users: int = 30
    duration_s: float = 5.0
    session_ttl: int = 3
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's


@dataclass(frozen=True)
class Replicas:
    replicas: int = 3
    rate: float = 300.0
    users: int = 30
    duration_s: float = 3.0
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's


@dataclass(frozen=True)
class Revocation:
    window_s: float = 2.0
    duration_s: float = 4.0
    users: int = 5
    rate: float = 100.0
    replicas: int = 3
    variants: tuple[str, ...] = ()
    repetitions: int = 0  # 0: the profile's


@dataclass(frozen=True)
class Outage:
    """Redis stopped `stop_after_s` after the load starts, started again `down_s` later
    on the same port (Redis variants only)."""

    rate: float = 200.0
    users: int = 4
    duration_s: float = 8.0
    stop_after_s: float = 3.0
    down_s: float = 2.0
    variants: tuple[str, ...] = ("session-redis", "jwt-hs256-revocable")


@dataclass(frozen=True)
class Overload:
    """`factor` x the calibrated capacity for `duration_s`, between two windows at
    `baseline_fraction` of capacity that show the latency before and after."""

    factor: float = 2.0
    duration_s: float = 30.0
    users: int = 200
    baseline_fraction: float = 0.3
    baseline_s: float = 5.0
    variants: tuple[str, ...] = ("session-redis", "jwt-hs256-revocable")


@dataclass(frozen=True)
class Profile:
    name: str
    variants: tuple[str, ...]
    repetitions: int
    warmup_s: float
    experiments: tuple[str, ...]
    latency: Latency
    calibrate: Calibrate
    population: Population
    churn: Churn
    replicas: Replicas
    revocation: Revocation
    outage: Outage = Outage()
    overload: Overload = Overload()
    login_users: int = 10_000
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def repetitions_for(self, experiment: str) -> int:
        """The experiment's own repetition count if it sets one, else the profile's."""
        return getattr(getattr(self, experiment, None), "repetitions", 0) or self.repetitions

    def variants_for(self, experiment: str) -> tuple[str, ...]:
        """The experiment's own variant list if it names one, else the profile's."""
        section = getattr(self, experiment, None)
        chosen = getattr(section, "variants", ()) or self.variants
        return tuple(v for v in chosen if v in self.variants) or chosen


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}; known keys: "
                           f"{', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        expected = known[key].type
        if isinstance(value, list):
            value = tuple(value)
        if "tuple" in str(expected):
            if not isinstance(value, tuple) or (not value and key != "variants"):
                raise ProfileError(f"{where}.{key}: must be a non-empty list")
            item_type = str if key == "variants" else (int if key == "sizes" else (int, float))
            for item in value:
                if isinstance(item, bool) or not isinstance(item, item_type):
                    raise ProfileError(f"{where}.{key}: {item!r} is not a valid entry")
                if not isinstance(item, str) and item <= 0:
                    raise ProfileError(f"{where}.{key}: {item!r} must be positive")
        elif expected in ("int", "float"):
            numeric = (int,) if expected == "int" else (int, float)
            if isinstance(value, bool) or not isinstance(value, numeric) or value <= 0:
                raise ProfileError(f"{where}.{key}: must be a positive {expected}, got {value!r}")
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        missing = str(exc).rsplit(":", 1)[-1].strip()
        raise ProfileError(f"{where}: missing required key {missing}") from None


def resolve_profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        if not candidate.is_file():
            raise ProfileError(f"profile file {name_or_path} does not exist")
        return candidate
    builtin = PROFILES_DIR / f"{name_or_path}.toml"
    if not builtin.is_file():
        names = sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))
        raise ProfileError(f"unknown profile {name_or_path!r}; built-in profiles: "
                           f"{', '.join(names)}, or give a path to a .toml file")
    return builtin


def load_profile(name_or_path: str) -> Profile:
    path = resolve_profile_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    where = path.name
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    allowed_top = {"name", "variants", "repetitions", "warmup_s", "experiments", "login_users"}
    unknown = sorted(set(top) - allowed_top) + sorted(
        set(k for k, v in data.items() if isinstance(v, dict)) - set(EXPERIMENTS))
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}")
    variants = tuple(data.get("variants", VARIANTS))
    for scope, listed in [("variants", variants)] + [
            (f"{s}.variants", tuple(data.get(s, {}).get("variants", ())))
            for s in EXPERIMENTS if isinstance(data.get(s), dict)]:
        for variant in listed:
            if variant not in VARIANTS:
                raise ProfileError(f"{where}: {scope}: unknown variant {variant!r}; "
                                   f"choose from {', '.join(VARIANTS)}")
    experiments = tuple(data.get("experiments", DEFAULT_EXPERIMENTS))
    for experiment in experiments:
        if experiment not in EXPERIMENTS:
            raise ProfileError(f"{where}: experiments: unknown experiment {experiment!r}; "
                               f"choose from {', '.join(EXPERIMENTS)}")
    repetitions = data.get("repetitions", 3)
    warmup = data.get("warmup_s", 1.0)
    login_users = data.get("login_users", 10_000)
    for key, value in (("repetitions", repetitions), ("login_users", login_users)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProfileError(f"{where}: {key}: must be a positive integer, got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int | float) or warmup < 0:
        raise ProfileError(f"{where}: warmup_s: must be a number >= 0, got {warmup!r}")
    if "latency" in experiments and "latency" not in data:
        raise ProfileError(f"{where}: [latency] table with `rates` is required")
    if "population" in experiments and "population" not in data:
        raise ProfileError(f"{where}: [population] table with `sizes` is required")
    profile = Profile(
        name=str(data.get("name", path.stem)),
        variants=variants,
        repetitions=repetitions,
        warmup_s=float(warmup),
        experiments=experiments,
        latency=_section(Latency, data.get("latency", {"rates": [100]}), f"{where} [latency]"),
        calibrate=_section(Calibrate, data.get("calibrate", {}), f"{where} [calibrate]"),
        population=_section(Population, data.get("population", {"sizes": [1000]}),
                            f"{where} [population]"),
        churn=_section(Churn, data.get("churn", {}), f"{where} [churn]"),
        replicas=_section(Replicas, data.get("replicas", {}), f"{where} [replicas]"),
        revocation=_section(Revocation, data.get("revocation", {}), f"{where} [revocation]"),
        outage=_section(Outage, data.get("outage", {}), f"{where} [outage]"),
        overload=_section(Overload, data.get("overload", {}), f"{where} [overload]"),
        login_users=login_users,
        source=str(path),
        raw=data,
    )
    if any(f > 1 for f in profile.latency.fractions):
        raise ProfileError(f"{where} [latency].fractions: a fraction of capacity must be at "
                           f"most 1, got {max(profile.latency.fractions)!r}")
    outage = profile.outage
    if outage.stop_after_s + outage.down_s >= outage.duration_s:
        raise ProfileError(f"{where} [outage]: stop_after_s + down_s must end before "
                           f"duration_s, so the run sees Redis come back")
    if profile.overload.baseline_fraction > 1:
        raise ProfileError(f"{where} [overload].baseline_fraction: a fraction of capacity "
                           f"must be at most 1")
    if profile.calibrate.growth <= 1:
        raise ProfileError(f"{where} [calibrate].growth: must be above 1, "
                           f"got {profile.calibrate.growth!r}")
    return profile
