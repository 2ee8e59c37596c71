"""Authentication variants, one small module each, behind the AuthVariant interface."""

from __future__ import annotations

import redis.asyncio as aioredis

from servers.settings import Settings
from servers.variants.base import AuthVariant, Identity, StoreUnavailable
from servers.variants.none import NoAuth
from servers.variants.sessions import SessionCookie, SessionMemory, SessionRedis
from servers.variants.tokens import JwtVariant, RevocableJwt

__all__ = ["AuthVariant", "Identity", "StoreUnavailable", "build_variant"]


def build_variant(settings: Settings, redis: aioredis.Redis | None) -> AuthVariant:
    """The variant named by settings.auth; Redis-backed ones get the injected client."""
    name = settings.auth
    if name == "none":
        return NoAuth()
    if name == "session-memory":
        return SessionMemory(settings)
    if name == "session-cookie":
        return SessionCookie(settings)
    if name.startswith("jwt-") and name != "jwt-hs256-revocable":
        return JwtVariant(settings, name)
    if redis is None:
        raise ValueError(f"variant {name} needs Redis")
    if name == "session-redis":
        return SessionRedis(settings, redis)
    return RevocableJwt(settings, redis)
