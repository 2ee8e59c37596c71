"""Shared fixtures: isolated environment, a real private Redis, clients for any variant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from loadtests.processes import RedisHandle, start_redis
from servers.app import create_app
from servers.settings import REDIS_VARIANTS, Settings

ADMIN_TOKEN = "test-admin-token-0123456789"
SESSION_VARIANTS = ("session-memory", "session-redis", "session-cookie")
JWT_VARIANTS = ("jwt-hs256", "jwt-rs256", "jwt-es256", "jwt-eddsa", "jwt-hs256-revocable")
REVOCABLE = ("session-memory", "session-redis", "jwt-hs256-revocable")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret or setting from the developer's shell leaks into a test."""
    for name in ("AUTHSCALE_JWT_KEY", "AUTHSCALE_JWT_KEY_FILE", "AUTHSCALE_COOKIE_KEY",
                 "AUTHSCALE_ADMIN_TOKEN"):
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


@dataclass
class Credential:
    """What a client presents after login, as request headers."""

    variant: str
    value: str | None

    @property
    def headers(self) -> dict[str, str]:
        if self.value is None:
            return {}
        if self.variant.startswith("jwt-"):
            return {"Authorization": f"Bearer {self.value}"}
        return {"Cookie": f"authscale_session={self.value}"}

    def tampered(self) -> Credential:
        assert self.value
        middle = len(self.value) // 2
        flipped = "A" if self.value[middle] != "A" else "B"
        return Credential(self.variant, self.value[:middle] + flipped + self.value[middle + 1:])


async def login(client: TestClient, variant: str, k: int = 1) -> Credential:
    resp = await client.post("/login", json={"username": f"user{k}", "password": f"pw-{k}"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    if variant.startswith("jwt-"):
        return Credential(variant, body["access_token"])
    if variant == "none":
        return Credential(variant, None)
    cookie = SimpleCookie(resp.headers["Set-Cookie"])["authscale_session"]
    # Send back what the server set, quotes included, as a browser does.
    raw = resp.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    assert cookie.value
    return Credential(variant, raw)


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


def needs_redis(variant: str) -> bool:
    return variant in REDIS_VARIANTS
