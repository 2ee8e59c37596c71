"""The cost of each variant's primitive alone, in a tight loop, on the server's core.

The experiment runs this module as a child process pinned to the server's core:

    python -m loadtests.experiments primitives --redis-url URL --out raw/primitives.csv

So a reader can see how much of a variant's in-server auth time is its primitive (an HMAC,
a signature check, a Redis round trip, a dict lookup) and how much is the library and the
design around it. Each figure is the median of several timeit repeats, in microseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
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
from servers.variants.tokens import AUDIENCE, ISSUER, REQUIRED_CLAIMS, generate_key

NAME = "primitives"
RUNS_BY_DEFAULT = True
COLUMNS = ("primitive", "variant", "us_per_op", "repeats", "ops_per_repeat")
REPEATS = 5


def per_op_us(call: Callable[[], Any], seconds: float = 0.05) -> tuple[float, int]:
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
    rows = []
    decoder = jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})
    # One row pair per algorithm: each stateless JWT variant's decode and signature check.
    for spec in REGISTRY:
        if spec.credential != "bearer" or spec.denylist != "none" or spec.algorithm is None:
            continue
        algorithm = spec.algorithm
        key = generate_key(algorithm)
        verify_key = key if algorithm == "HS256" else key.public_key()
        token = token_for(algorithm, key)

        def decode(token: str = token, verify_key: Any = verify_key,
                   algorithm: str = algorithm) -> Any:
            return decoder.decode(token, verify_key, algorithms=[algorithm],
                                  audience=AUDIENCE, issuer=ISSUER)

        us, n = per_op_us(decode)
        rows.append(row(spec.primitives[0], spec.name, us, n))
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
        else:
            def verify(message: bytes = message, prepared: Any = prepared,
                       signature: bytes = signature, algo: Any = algo) -> bool:
                return bool(algo.verify(message, prepared, signature))
        us, n = per_op_us(verify)
        rows.append(row(spec.reference_primitives[0], spec.name, us, n))
    return rows


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
    """No settings: each primitive is timed for about 0.05 s, REPEATS times."""


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

