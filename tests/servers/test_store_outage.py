"""A lost or hung Redis: 503 within 1 s (fail closed), and recovery without a restart."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from loadtests.runner.processes import RedisHandle, start_redis
from tests.conftest import MakeClient, login

pytestmark = pytest.mark.parametrize("variant", ["session-redis", "jwt-hs256-revocable"])


@pytest.fixture
def own_redis() -> Iterator[RedisHandle]:
    """A Redis of this test's own, since the test stops it."""
    handle = start_redis(use_env=False)
    try:
        yield handle
    finally:
        handle.stop()


async def timed_get(client, cred) -> tuple[int, float]:
    start = time.monotonic()
    resp = await client.get("/me", headers=cred.headers)
    return resp.status, time.monotonic() - start


async def test_hung_redis_fails_closed_fast(make_client: MakeClient, own_redis: RedisHandle,
                                            variant: str) -> None:
    client = await make_client(variant, redis_url=own_redis.url)
    cred = await login(client, variant)
    assert own_redis.child is not None
    os.kill(own_redis.child.pid, signal.SIGSTOP)
    try:
        for _ in range(3):
            status, elapsed = await timed_get(client, cred)
            assert status == 503
            assert elapsed < 1.0
        resp = await client.post("/login", json={"username": "user1", "password": "pw-1"})
        if variant == "session-redis":  # a login writes the session to Redis
            assert resp.status == 503
            assert await resp.json() == {"error": "session_store_unavailable"}
        else:  # issuing a token needs no store; using it does
            assert resp.status == 200
    finally:
        os.kill(own_redis.child.pid, signal.SIGCONT)
    status, _ = await timed_get(client, cred)
    assert status == 200  # same data, recovered by itself


async def test_lost_redis_then_back(make_client: MakeClient, own_redis: RedisHandle,
                                    variant: str) -> None:
    client = await make_client(variant, redis_url=own_redis.url)
    cred = await login(client, variant)
    own_redis.stop()
    status, elapsed = await timed_get(client, cred)
    assert (status, elapsed < 1.0) == (503, True)
    assert (await client.post("/logout", headers=cred.headers)).status == 503
    replacement = start_redis(use_env=False, port=own_redis.port)
    try:
        deadline = time.monotonic() + 2
        while (status := (await timed_get(client, await login(client, variant)))[0]) != 200:
            assert time.monotonic() < deadline, status
    finally:
        replacement.stop()
