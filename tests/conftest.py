"""Shared fixtures: isolated environment, a real private Redis, clients for any variant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from loadtests.runner.processes import RedisHandle, start_redis
from loadtests.swarm.credentials import Credential, from_login
from servers.app import create_app
from servers.settings import Settings
from servers.variants.registry import ENV_ADMIN_TOKEN, ENV_COOKIE_KEY, ENV_JWT_KEY, REGISTRY
from servers.variants.registry import ENV_JWT_KEY_FILE as ENV_KEY_FILE

ADMIN_TOKEN = "test-admin-token-0123456789"
SESSION_VARIANTS = tuple(v.name for v in REGISTRY if v.credential == "cookie")
JWT_VARIANTS = tuple(v.name for v in REGISTRY if v.credential == "bearer")
REVOCABLE = tuple(v.name for v in REGISTRY if v.logout_revokes)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret or setting from the developer's shell leaks into a test."""
    for name in (ENV_JWT_KEY, ENV_KEY_FILE, ENV_COOKIE_KEY, ENV_ADMIN_TOKEN):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisHandle]:
    handle = start_redis()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def clean_redis(redis_server: RedisHandle) -> RedisHandle:
    if redis_server.child is not None:  # never flush a server we did not start
        redis_server.client().flushdb()
    return redis_server


async def login(client: TestClient, variant: str, k: int = 1) -> Credential:
    """Log user<k> in; its credential, parsed as the load generator parses it."""
    resp = await client.post("/login", json={"username": f"user{k}", "password": f"pw-{k}"})
    assert resp.status == 200, await resp.text()
    credential = from_login(variant, f"user{k}", resp.headers.get("Set-Cookie"),
                            await resp.read())
    assert credential is not None, f"{variant}'s login answer carried no credential"
    return credential


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client: Any, clean_redis: RedisHandle) -> MakeClient:
    """A test client for a variant, over a real socket, with a clean real Redis."""

    async def make(variant: str, **overrides: Any) -> TestClient:
        settings = Settings(auth=variant, users=50, redis_url=clean_redis.url,
                            admin_token=ADMIN_TOKEN)
        settings = replace(settings, **overrides)
        client: TestClient = await aiohttp_client(create_app(settings),
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return client

    return make

