"""The cost of each variant's primitive alone, in a tight loop, on the server's core.

The experiment runs this module as a child process pinned to the server's core:

    python -m loadtests.experiments primitives --redis-url URL --out raw/primitives.csv

So a reader can see how much of a variant's in-server auth time is its primitive (an HMAC,
a signature check, a Redis round trip, a dict lookup) and how much is the library and the
design around it. Each figure is the median of several timeit repeats, in microseconds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import redis.asyncio as aioredis
import uvloop
from cryptography.fernet import Fernet

from loadtests.atomic import write_csv
from loadtests.runner.context import Context, Planned
from servers.variants.registry import REGISTRY, variant
from servers.variants.tokens import generate_key
from servers.variants.verifiers import AUDIENCE, ISSUER, REQUIRED_CLAIMS, verifier

NAME = "primitives"
RUNS_BY_DEFAULT = True
COLUMNS = ("primitive", "variant", "us_per_op", "repeats", "ops_per_repeat")
REPEATS = 5


def per_op_us(call: Callable[[], Any], seconds: float = 0.02) -> tuple[float, int]:
    """Median microseconds per call over REPEATS repeats of about `seconds` each."""
    timer = timeit.Timer(call)
    one = timer.timeit(number=20) / 20  # a first guess, also a warm-up
    number = max(1, int(seconds / max(one, 1e-9)))
    runs = timer.repeat(repeat=REPEATS, number=number)
    return statistics.median(runs) / number * 1e6, number


def token_for(algorithm: str, key: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "user1", "iat": now, "exp": now + 900,
                       "jti": secrets.token_hex(16), "iss": ISSUER, "aud": AUDIENCE},
                      key, algorithm=algorithm)


def jwt_rows() -> list[dict[str, Any]]:
    """Each stateless JWT variant's decode with its own library (the verifier its server
    runs), then each algorithm's bare signature check once, and the floors of an HS256
    verify: a strict one in the standard library alone (stdlib_hs256)."""
    rows = []
    references: set[str] = set()
    for spec in REGISTRY:
        if spec.credential != "bearer" or spec.denylist != "none" or spec.algorithm is None:
            continue
        algorithm = spec.algorithm
        key = generate_key(algorithm)
        verify_key = key if algorithm == "HS256" else key.public_key()
        token = token_for(algorithm, key)
        decoder = verifier(spec.library or "PyJWT", algorithm, verify_key)
        assert decoder.verify(token) is not None, f"{spec.name} refused its own token"
        us, n = per_op_us(lambda token=token, decoder=decoder: decoder.verify(token))
        rows.append(row(spec.primitives[0], spec.name, us, n))
        if spec.reference_primitives[0] in references:
            continue
        references.add(spec.reference_primitives[0])
        signing_input, _, signature_b64 = token.rpartition(".")
        signature = jwt.utils.base64url_decode(signature_b64)
        algo = jwt.get_algorithm_by_name(algorithm)
        prepared = algo.prepare_key(verify_key)
        message = signing_input.encode()
        if algorithm == "HS256":
            def verify(message: bytes = message, key: bytes = verify_key,
                       signature: bytes = signature) -> bool:
                digest = hmac.new(key, message, hashlib.sha256).digest()
                return hmac.compare_digest(digest, signature)
            floor = token
            us, n = per_op_us(lambda floor=floor, key=verify_key: stdlib_hs256(floor, key))
            rows.append(row(STDLIB_HS256, "", us, n))
        else:
            def verify(message: bytes = message, prepared: Any = prepared,
                       signature: bytes = signature, algo: Any = algo) -> bool:
                return bool(algo.verify(message, prepared, signature))
        us, n = per_op_us(verify)
        rows.append(row(spec.reference_primitives[0], spec.name, us, n))
    return rows


# The floor of a strict HS256 verify in Python: what no library can go under by much.
STDLIB_HS256 = "stdlib HS256 verify (strict, floor)"
_SHAPE = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def stdlib_hs256(token: str, key: bytes) -> dict[str, Any] | None:
    """An HS256 token verified with the standard library only, as strictly as the servers:
    its shape, the header's algorithm, the signature (constant time), every claim present,
    issuer, audience and times. Written here because it is a floor to measure against, not
    a verifier to run: the variants use maintained libraries."""
    found = _SHAPE.fullmatch(token)
    if found is None:
        return None
    header_b64, payload_b64, signature_b64 = found.groups()
    expected = hmac.digest(key, f"{header_b64}.{payload_b64}".encode(), "sha256")
    if not hmac.compare_digest(expected, _b64(signature_b64)):
        return None
    header, claims = json.loads(_b64(header_b64)), json.loads(_b64(payload_b64))
    now = time.time()
    if header.get("alg") != "HS256" or header.get("crit") or \
            not all(c in claims for c in REQUIRED_CLAIMS) or claims["iss"] != ISSUER or \
            claims["aud"] != AUDIENCE or not claims["iat"] <= now < claims["exp"]:
        return None
    return dict(claims)


def row(primitive: str, owner: str, us: float, number: int) -> dict[str, Any]:
    """One primitive's cost; `owner` is the variant whose auth path runs it."""
    return {"primitive": primitive, "variant": owner, "us_per_op": round(us, 3),
            "repeats": REPEATS, "ops_per_repeat": number}


def local_rows() -> list[dict[str, Any]]:
    sessions = {secrets.token_hex(16): {"user": f"user{i}"} for i in range(10_000)}
    key = next(iter(sessions))
    us, n = per_op_us(lambda: sessions.get(key))
    rows = [row(variant("session-memory").primitives[0], "session-memory", us, n)]
    fernet = Fernet(Fernet.generate_key())
    cookie = fernet.encrypt(b'{"created":1795748677,"session":{"user":"user1"}}')
    us, n = per_op_us(lambda: fernet.decrypt(cookie, ttl=1800))
    rows.append(row(variant("session-cookie").primitives[0], "session-cookie", us, n))
    return rows


async def redis_rows(url: str, operations: int = 1000) -> list[dict[str, Any]]:
    """Sequential round trips with the servers' own client (redis.asyncio on uvloop)."""
    client = aioredis.Redis.from_url(url)
    rows = []
    try:
        await client.set("authscale_primitive_probe", b"x" * 60)
        for name, owner, call in (
                (variant("session-redis").primitives[0], "session-redis",
                 lambda: client.get("authscale_primitive_probe")),
                (variant("jwt-hs256-revocable").primitives[1], "jwt-hs256-revocable",
                 lambda: client.exists("authscale_primitive_probe"))):
            for _ in range(200):  # warm the connection
                await call()
            medians = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                for _ in range(operations):
                    await call()
                medians.append((time.perf_counter() - start) / operations * 1e6)
            rows.append(row(name, owner, statistics.median(medians), operations))
        await client.delete("authscale_primitive_probe")
    finally:
        await client.aclose()
    return rows


@dataclass(frozen=True)
class Section:
    """No settings: each primitive is timed for about 0.02 s, REPEATS times."""


def plan(ctx: Context) -> list[Planned]:
    return []


def csv_path(ctx: Context) -> Path:
    return ctx.run.path / "raw" / "primitives.csv"


def run(ctx: Context, planned: list[Planned]) -> None:
    """Each variant's primitive alone in a tight loop, on the server's core (once a run)."""
    out = csv_path(ctx)
    if out.exists():
        return
    ctx.describe("primitives · timing each variant's primitive alone")
    redis = ctx.supervisor.redis(ctx.pinning.redis_cpus)
    try:
        child = ctx.supervisor.spawn(
            "primitives", [sys.executable, "-m", "loadtests.experiments", "primitives",
                           "--redis-url", redis.url, "--out", str(out)],
            ctx.run.path / "logs" / "primitives.log", ctx.pinning.server_cpus)
        deadline = time.monotonic() + 120
        while child.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        code = ctx.supervisor.stop(child)
        if code != 0 or not out.exists():
            ctx.fail(NAME, "all", f"exit code {code}: {child.log_tail(5)}")
    finally:
        ctx.supervisor.stop_redis(redis)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.experiments primitives",
                                     description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = local_rows() + jwt_rows()
    rows += uvloop.run(redis_rows(args.redis_url))
    write_csv(args.out, COLUMNS, rows)
    for r in rows:
        print(f"{r['primitive']:<36} {r['variant']:<22} {r['us_per_op']:>10.2f} us")
    return 0

