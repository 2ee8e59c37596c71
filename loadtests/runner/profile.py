"""Bench profiles: TOML files naming variants, repetitions and each experiment's settings.

`make bench PROFILE=quick` reads loadtests/profiles/quick.toml; PROFILE=path/to/mine.toml
reads that file. Each experiment owns its table (`[latency]`, `[population]`, ...): its
module in loadtests.experiments declares the keys as a frozen dataclass, `Section`. Every
mistake is reported as one line naming the key to fix.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from servers.variants.registry import NAMES

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line naming what to change."""


@dataclass(frozen=True)
class Profile:
    name: str
    variants: tuple[str, ...]
    repetitions: int
    warmup_s: float
    experiments: tuple[str, ...]
    # Every experiment's table, as its Section (defaults where the file has none).
    sections: Mapping[str, Any]
    login_users: int = 10_000
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def __getattr__(self, name: str) -> Any:
        """An experiment's section by its name: `profile.latency.rates`."""
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def repetitions_for(self, experiment: str) -> int:
        """The experiment's own repetition count if it sets one, else the profile's."""
        return getattr(self.sections.get(experiment), "repetitions", 0) or self.repetitions

    def variants_for(self, experiment: str) -> tuple[str, ...]:
        """The experiment's own variant list if it names one, else the profile's."""
        chosen = getattr(self.sections.get(experiment), "variants", ()) or self.variants
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
            names = "tuple[str" in str(expected)  # variant names: may be empty
            if not isinstance(value, tuple) or (not value and not names):
                raise ProfileError(f"{where}.{key}: must be a non-empty list")
            item_type = str if names else (int if key.endswith("sizes") else (int, float))
            for item in value:
                if isinstance(item, bool) or not isinstance(item, item_type):
                    raise ProfileError(f"{where}.{key}: {item!r} is not a valid entry")
                if not isinstance(item, str) and item <= 0:
                    raise ProfileError(f"{where}.{key}: {item!r} must be positive")
        elif expected in ("int", "float"):
            numeric = (int,) if expected == "int" else (int, float)
            zero = key in getattr(cls, "ZERO_ALLOWED", ())
            if isinstance(value, bool) or not isinstance(value, numeric) or value < 0 or \
                    (value == 0 and not zero):
                kind = "a number >= 0" if zero else f"a positive {expected}"
                raise ProfileError(f"{where}.{key}: must be {kind}, got {value!r}")
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


def load_profile(name_or_path: str, sections: Mapping[str, type],
                 default_experiments: tuple[str, ...]) -> Profile:
    """The profile, with each experiment's table read into its `Section` and checked.

    A Section may give `PLACEHOLDER` (its table when the profile does not run it),
    `ZERO_ALLOWED` (the numeric keys where 0 means something: off), and `check(where)`
    (rules across its keys, raising ProfileError).
    """
    path = resolve_profile_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    where = path.name
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    allowed_top = {"name", "variants", "repetitions", "warmup_s", "experiments", "login_users"}
    unknown = sorted(set(top) - allowed_top) + sorted(
        set(k for k, v in data.items() if isinstance(v, dict)) - set(sections))
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}")
    variants = tuple(data.get("variants", NAMES))
    for scope, listed in [("variants", variants)] + [
            (f"{s}.variants", tuple(data.get(s, {}).get("variants", ())))
            for s in sections if isinstance(data.get(s), dict)]:
        for variant in listed:
            if variant not in NAMES:
                raise ProfileError(f"{where}: {scope}: unknown variant {variant!r}; "
                                   f"choose from {', '.join(NAMES)}")
    experiments = tuple(data.get("experiments", default_experiments))
    for experiment in experiments:
        if experiment not in sections:
            raise ProfileError(f"{where}: experiments: unknown experiment {experiment!r}; "
                               f"choose from {', '.join(sections)}")
    repetitions = data.get("repetitions", 3)
    warmup = data.get("warmup_s", 1.0)
    login_users = data.get("login_users", 10_000)
    for key, value in (("repetitions", repetitions), ("login_users", login_users)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProfileError(f"{where}: {key}: must be a positive integer, got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int | float) or warmup < 0:
        raise ProfileError(f"{where}: warmup_s: must be a number >= 0, got {warmup!r}")
    read: dict[str, Any] = {}
    for name, cls in sections.items():
        placeholder = getattr(cls, "PLACEHOLDER", None)
        if name in experiments and name not in data and placeholder is not None:
            raise ProfileError(f"{where}: [{name}] table with `{next(iter(placeholder))}` "
                               f"is required")
        table = data.get(name, placeholder if placeholder is not None else {})
        section = _section(cls, table, f"{where} [{name}]")
        if hasattr(section, "check"):
            section.check(f"{where} [{name}]")
        read[name] = section
    return Profile(
        name=str(data.get("name", path.stem)),
        variants=variants,
        repetitions=repetitions,
        warmup_s=float(warmup),
        experiments=experiments,
        sections=read,
        login_users=login_users,
        source=str(path),
        raw=data,
    )
