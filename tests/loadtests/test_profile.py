"""The profile loader: built-in profiles load; every mistake is one line naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtests.experiments import DEFAULT_EXPERIMENTS, load_profile
from loadtests.runner.profile import ProfileError
from servers.variants.registry import DECLARED_PAIRS
from servers.variants.registry import NAMES as VARIANTS


@pytest.mark.parametrize("name", ["smoke", "quick", "full"])
def test_builtin_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert set(profile.variants) <= set(VARIANTS)
    # The calibration is its own command (`make calibrate`); the fault experiments are soak's.
    assert profile.experiments == DEFAULT_EXPERIMENTS
    assert profile.latency.rates or profile.latency.fractions
    assert profile.repetitions >= (1 if name == "smoke" else 3)


def test_calibrate_and_soak_profiles() -> None:
    assert load_profile("calibrate").experiments == ("calibrate",)
    # make calibrate: the variants quick measures, whose rates it sets.
    assert load_profile("calibrate").variants == load_profile("quick").variants
    soak = load_profile("soak")
    assert soak.experiments == ("calibrate", "outage", "overload")
    assert soak.overload.factor == 2 and soak.overload.duration_s == 30
    # make bench-compose: the claim's two figures, the containers' services only.
    compose = load_profile("compose")
    assert compose.experiments == ("latency", "population")
    assert set(compose.variants) <= set(VARIANTS)


def test_quick_covers_every_declared_pair_and_a_million_sessions() -> None:
    profile = load_profile("quick")
    declared = {v for p in DECLARED_PAIRS for v in (p.session, p.token)}
    assert declared | {"none"} <= set(profile.variants)
    assert load_profile("full").variants == VARIANTS
    assert max(profile.population.sizes) == 1_000_000
    assert max(load_profile("full").population.sizes) == 10_000_000


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return str(path)


MINIMAL = '[latency]\nrates = [100]\n[population]\nsizes = [1000]\n'


def test_own_profile_with_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, 'variants = ["none", "jwt-hs256"]\n' + MINIMAL))
    assert profile.name == "mine"
    assert profile.variants == ("none", "jwt-hs256")
    assert profile.repetitions == 3
    assert profile.variants_for("churn") == ("none", "jwt-hs256")


@pytest.mark.parametrize(("text", "message"), [
    ('variants = ["jwt-hs999"]\n' + MINIMAL, "unknown variant 'jwt-hs999'"),
    (MINIMAL + '[churn]\nvariants = ["nope"]\n', "churn.variants: unknown variant 'nope'"),
    ('repetitions = 0\n' + MINIMAL, "repetitions: must be a positive integer"),
    ('repetitions = "3"\n' + MINIMAL, "repetitions: must be a positive integer"),
    ('warmup_s = -1\n' + MINIMAL, "warmup_s: must be a number >= 0"),
    ('colour = "red"\n' + MINIMAL, "unknown key 'colour'"),
    (MINIMAL + '[latency2]\nrates = [1]\n', "unknown key 'latency2'"),
    ('[latency]\nrates = []\n[population]\nsizes = [1]\n', "latency].rates: must be a non-empty"),
    ('[latency]\nrates = [-5]\n[population]\nsizes = [1]\n', "-5 must be positive"),
    ('[latency]\nrates = [100]\nconnections = 2.5\n[population]\nsizes = [1]\n',
     "connections: must be a positive int"),
    ('[latency]\nrates = [100]\nfractions = [0.5]\n[population]\nsizes = [1]\n',
     "as `fractions` of the lowest capacity or as fixed `rates`, one of the two"),
    ('[latency]\nrate = [100]\n[population]\nsizes = [1]\n', "unknown key 'rate'"),
    ('[population]\nsizes = [1]\n', "[latency] table with `fractions` is required"),
    ('experiments = ["latency", "chaos"]\n' + MINIMAL, "unknown experiment 'chaos'"),
    ('[latency\nrates = [1]\n', "not valid TOML"),
    ('[latency]\nfractions = [0.5, 1.5]\n[population]\nsizes = [1]\n',
     "a fraction of capacity must be at most 1, got 1.5"),
    (MINIMAL + '[calibrate]\ngrowth = 1\n', "[calibrate].growth: must be above 1"),
    (MINIMAL + '[calibrate]\np99 = 5\n',
     "unknown key 'p99'; known keys: closed_loop_s, connections, credentials, duet_blocks"),
])
def test_profile_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)) as info:
        load_profile(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_unknown_profile_names() -> None:
    with pytest.raises(ProfileError,
                       match="built-in profiles: calibrate, compose, full, quick, smoke, soak"):
        load_profile("fast")
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile("/nonexistent/profile.toml")

