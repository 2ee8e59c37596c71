"""The run folder: results/<run-id>/ with its manifest, and results/latest pointing at it."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.atomic import write_json
from loadtests.runner import provenance
from loadtests.runner.profile import Profile
from servers.variants.registry import DECLARED_PAIRS, REGISTRY

RATE_MODEL = ("authscale-loadgen: open at a fixed rate (request k due at start + k / rate, "
              "timed from then), closed loop flat out (each connection's next request sent "
              "as its answer arrives); Locust: a fixed total rate shared by its users with "
              "constant_throughput(target / users), each waiting for its answer; requests "
              "are recorded only after warm-up")


def timestamp() -> str:
    """Now, as run folders are named: 20261128T001500Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class RunFolder:
    path: Path
    profile: Profile
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, profile: Profile, argv: list[str]) -> RunFolder:
        stamp = timestamp()
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
            "settings": {
                **{k: v for k, v in dataclasses.asdict(profile).items()
                   if k not in ("raw", "source", "sections")},
                **{name: dataclasses.asdict(section)
                   for name, section in profile.sections.items()},
            },
            # What the analysis knows of each variant: it imports nothing of ours.
            "variants": {v.name: v.facts() for v in REGISTRY},
            # The session-versus-token comparisons, declared before anything is measured.
            "pairs": [p.facts() for p in DECLARED_PAIRS],
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
