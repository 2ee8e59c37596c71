"""Each variant's auth path against its primitive, timed side by side in this one process.

A ratio, never a time: both run here, call by call in turn, so the machine's speed cancels.
The auth path (`variant.authenticate` on prepared requests) may cost at most 1.5x its
primitive timed the same way; a regression in our code around the primitive (per-request key
parsing, a second Redis round trip, a cookie parsed twice) fails here.

session-memory has no entry: its primitive, a dict lookup (0.03 us), costs less than reading
one request header, so no ratio to it means anything; `make calibrate` checks its absolute
budget (5 us) instead. The in-server figures, with cold caches, are calibrate's job.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet

from loadtests.runner.processes import RedisHandle
from loadtests.swarm.credentials import Credential, from_login
from servers.app import VARIANT, create_app
from servers.redis_client import create_redis
from servers.settings import Settings
from servers.variants.registry import BY_NAME
from servers.variants.tokens import TOKEN_SHAPE
from servers.variants.verifiers import verifier
from tests.conftest import JWT_VARIANTS

# Real processes for seconds at a time: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

LIMIT = 1.5
REQUESTS = 1000
ROUNDS = 5

Timed = Callable[[web.Request], Awaitable[Any]]


async def best_ratio(path: Timed, primitive: Timed, requests: list[web.Request]
                     ) -> tuple[float, float, float]:
    """The two alternate call by call, so drift and scheduling hit both alike; each side
    keeps the median of its fastest round."""
    path_us, primitive_us = [], []
    for _ in range(ROUNDS):
        times: tuple[list[int], list[int]] = ([], [])
        for request in requests:
            for call, into in ((path, times[0]), (primitive, times[1])):
                start = time.perf_counter_ns()
                await call(request)
                into.append(time.perf_counter_ns() - start)
        path_us.append(statistics.median(times[0]) / 1000)
        primitive_us.append(statistics.median(times[1]) / 1000)
    return min(path_us) / min(primitive_us), min(path_us), min(primitive_us)


async def issue(app: web.Application) -> Credential:
    """Log user1 in through the variant; the credential its answer carries."""
    variant = app[VARIANT]
    response = await variant.issue(make_mocked_request("POST", "/login", app=app), "user1")
    set_cookie = response.cookies.output(header="").strip() or None
    credential = from_login(variant.name, "user1", set_cookie, bytes(response.body))
    assert credential is not None
    return credential


def jwt_primitive(variant: Any, token: str) -> Callable[[], Any]:
    """The variant's library verifying the token, as the primitives experiment times it,
    after the strict shape check every variant makes before any library sees a token (a
    part of verifying strictly, whichever library: without it a compiled verifier's 9 us
    left the header's parsing and the Identity 1.56x of it on a slow day here)."""
    decoder = verifier(BY_NAME[variant.name].library or "PyJWT", variant.algorithm,
                       variant.verify_key)
    return lambda: TOKEN_SHAPE.fullmatch(token) and decoder.verify(token)


@pytest.mark.parametrize("name", [*JWT_VARIANTS, "session-redis", "session-cookie"])
async def test_auth_path_within_1_5x_its_primitive(name: str, redis_server: RedisHandle
                                                   ) -> None:
    cookie_key = Fernet.generate_key().decode()
    servers_redis = create_redis(redis_server.url, 1.0)  # the variant's client
    redis = create_redis(redis_server.url, 1.0)  # the primitive's, configured the same
    app = create_app(Settings(auth=name, users=10, redis_url=redis_server.url,
                              cookie_key=cookie_key), servers_redis)
    variant = app[VARIANT]
    try:
        credential = await issue(app)
        secret = credential.secret
        assert secret is not None
        requests = [make_mocked_request("GET", "/items", headers=credential.headers, app=app)
                    for _ in range(REQUESTS)]
        if name.startswith("jwt-"):
            decode = jwt_primitive(variant, secret)
            if name == "jwt-hs256-revocable":
                jti = str(decode()["jti"])

                async def primitive(request: web.Request) -> Any:
                    decode()
                    return await redis.exists(variant.PREFIX + jti)
            else:
                async def primitive(request: web.Request) -> Any:
                    return decode()
        elif name == "session-redis":
            key = variant.storage.redis_key(secret)

            async def primitive(request: web.Request) -> Any:
                return await redis.get(key)
        else:  # a cookie session must decrypt and parse its payload, whatever the library
            fernet = Fernet(cookie_key)
            token = secret.strip('"').encode()

            async def primitive(request: web.Request) -> Any:
                return json.loads(fernet.decrypt(token, ttl=1800))

        async def path(request: web.Request) -> Any:
            identity = await variant.authenticate(request)
            assert identity is not None and identity.user == "user1"

        ratio, path_us, primitive_us = await best_ratio(path, primitive, requests)
    finally:
        await redis.aclose()
        await servers_redis.aclose()
    assert ratio <= LIMIT, (f"{name}: auth path {path_us:.1f} us is {ratio:.2f}x its "
                            f"primitive's {primitive_us:.1f} us (limit {LIMIT}x)")
