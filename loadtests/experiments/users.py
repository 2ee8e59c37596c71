"""Who a live-user step's requests go to: the users a variant's server holds (seeded in bulk
through `POST /admin/seed`) and the credentials that reach all N of them, for the
population experiment and the connections experiment alike."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from loadtests.runner.context import Context, Group
from loadtests.runner.loadgen import Credentials, Derived, Minted
from servers.variants import registry


def derivable(name: str) -> bool:
    """Seeded entries are sessions a client can present (server-side session stores)."""
    return registry.variant(name).state in ("process", "redis")


def mint_kind(name: str) -> str | None:
    """What the generator can mint of this variant's credentials (loadgen.Minted): HS256
    tokens with the run's secret, session cookies encrypted with the run's Fernet key."""
    spec = registry.variant(name)
    if spec.algorithm == "HS256":
        return "hs256"
    return "fernet" if spec.secret == "cookie_key" else None


def mintable(name: str) -> bool:
    return mint_kind(name) is not None


def minted(ctx: Context, name: str, users: int, zipf: float = 0.0) -> Minted:
    """Users 1..`users` of a variant, their credentials minted by the generator."""
    return Minted(ctx.secret_file(name), 1, users, zipf, kind=mint_kind(name) or "")


def distribution(name: str) -> str:
    """Over which users a step's requests go: all N seeded sessions (`uniform`, or a hot
    set with `zipf`), N users' credentials minted by the generator (`minted`), or the real
    logged-in users where the generator can make neither (`logged-in`)."""
    if mintable(name):
        return "minted"
    return "seeded" if derivable(name) else "logged-in"


def in_process(name: str) -> bool:
    """Whether a variant's store grows inside the server's process, where the collector
    walks it."""
    return registry.variant(name).state == "process"


def credentials(ctx: Context, group: Group, seeded: dict[str, Any], users: int,
                zipf: float = 0.0) -> Credentials:
    """Every seeded session (derived ids, from the server's answer to its seeding), a
    credential minted for each of `users`, or the real logged-in users' file; drawn
    uniformly, or with a power law over the users (`zipf` > 0: a hot set)."""
    kind = distribution(group.variant)
    if kind == "minted":
        return minted(ctx, group.variant, users, zipf)
    if kind == "seeded" and "seeded_ids" in seeded:
        return Derived.seeded_sessions(seeded["seeded_ids"], zipf)
    return ctx.credentials(group)


def stored_in(name: str) -> str:
    """Where a variant's per-user state grows: the process, Redis (sessions, or a revocable
    token's denylist), or nowhere."""
    spec = registry.variant(name)
    return "redis" if spec.denylist == "redis" else spec.state


def seed(url: str, admin_token: str, count: int) -> dict[str, Any]:
    """`POST /admin/seed` on one server: its answer (docs/api.md)."""
    request = urllib.request.Request(
        url + "/admin/seed", method="POST", data=json.dumps({"count": count}).encode(),
        headers={"Content-Type": "application/json", "X-Admin-Token": admin_token})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.load(answer)  # type: ignore[no-any-return]
