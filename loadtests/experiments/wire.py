"""Bytes each credential adds to every request, from the verification every server gets
before load (servers are started only for variants no other experiment verified)."""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.atomic import write_csv
from loadtests.runner.context import Context, Planned

NAME = "wire"
RUNS_BY_DEFAULT = True
COLUMNS = ("variant", "header_bytes", "credential_bytes", "set_cookie_bytes",
           "login_response_bytes")


@dataclass(frozen=True)
class Section:
    """No settings: the bytes come from each variant's verification."""


def plan(ctx: Context) -> list[Planned]:
    return []


def run(ctx: Context, planned: list[Planned]) -> None:
    missing = tuple(v for v in ctx.profile.variants if v not in ctx.verified)
    if missing:
        with ctx.groups(NAME, missing):
            pass
    rows = [{"variant": v, "header_bytes": r.header_bytes,
             "credential_bytes": r.credential_bytes, "set_cookie_bytes": r.set_cookie_bytes,
             "login_response_bytes": r.login_response_bytes}
            for v, r in ctx.verified.items() if r.ok]
    write_csv(ctx.run.path / "raw" / "wire.csv", COLUMNS, rows)
