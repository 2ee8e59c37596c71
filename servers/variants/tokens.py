"""Stateless JWTs, one pinned algorithm per variant, issued by PyJWT and verified by the
variant's library (servers.variants.verifiers), and the revocable HS256 twin."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
import redis.asyncio as aioredis
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from redis import RedisError

from servers.jsonutil import json_response
from servers.settings import Settings
from servers.variants import registry
from servers.variants.base import AuthVariant, Identity, StoreUnavailable
from servers.variants.expiry_index import ExpiryIndex
from servers.variants.verifiers import AUDIENCE, ISSUER, verifier

# Far above any token we issue (~300-700 bytes); refusing early bounds the work an
# attacker can make us do per request.
MAX_TOKEN_BYTES = 4096
# A compact JWS in canonical base64url: anything else (padding, the standard alphabet,
# spaces) is refused before decoding, because Python's base64 decoder tolerates it and so
# two different strings would carry one signature.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

def generate_key(algorithm: str) -> Any:
    if algorithm == "HS256":
        return secrets.token_bytes(32)
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def load_key(algorithm: str, material: bytes) -> Any:
    """A key given by the user (env or file), checked against the variant's algorithm."""
    if algorithm == "HS256":
        if len(material) < 32:
            raise ValueError("the HS256 secret must be at least 32 bytes")
        return material
    try:
        key = serialization.load_pem_private_key(material, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"the {algorithm} key must be an unencrypted PEM private key") from None
    expected = {"RS256": rsa.RSAPrivateKey, "ES256": ec.EllipticCurvePrivateKey,
                "EdDSA": ed25519.Ed25519PrivateKey}[algorithm]
    if not isinstance(key, expected):
        raise ValueError(f"the key given is not a {algorithm} private key")
    if algorithm == "ES256" and not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the ES256 key must be on curve P-256")
    if algorithm == "RS256" and key.key_size < 2048:
        raise ValueError("the RS256 key must have at least 2048 bits")
    return key


def key_id(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")


class JwtVariant(AuthVariant):
    """Bearer JWTs; keys prepared once at start-up, never parsed per request."""

    challenge = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012

    def __init__(self, settings: Settings, redis: aioredis.Redis | None = None) -> None:
        self.name = settings.auth
        algorithm = registry.variant(settings.auth).algorithm
        assert algorithm is not None, f"{settings.auth} is not a JWT variant"
        self.algorithm: str = algorithm
        self.ttl = settings.token_ttl
        key = (load_key(self.algorithm, settings.jwt_key) if settings.jwt_key
               else generate_key(self.algorithm))
        self.signing_key = key
        self.headers: dict[str, str] | None = None
        if self.algorithm == "HS256":
            self.verify_key: Any = key
            self.jwks: dict[str, Any] | None = None
        else:
            self.verify_key = key.public_key()
            kid = key_id(self.verify_key)
            self.headers = {"kid": kid}
            algo = jwt.get_algorithm_by_name(self.algorithm)
            jwk = algo.to_jwk(self.verify_key, as_dict=True)
            self.jwks = {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": self.algorithm}]}
        spec = registry.variant(settings.auth)
        self._verifier = verifier(spec.library or "PyJWT", self.algorithm, self.verify_key)

    async def issue(self, request: web.Request, user: str) -> web.Response:
        """A fresh token, the same bytes whichever library verifies it."""
        now = int(time.time())
        claims = {"sub": user, "iat": now, "exp": now + self.ttl, "jti": secrets.token_hex(16),
                  "iss": ISSUER, "aud": AUDIENCE}
        token = jwt.encode(claims, self.signing_key, algorithm=self.algorithm,
                           headers=self.headers)
        return json_response({"access_token": token, "token_type": "Bearer",
                              "expires_in": self.ttl})

    def decode(self, request: web.Request) -> dict[str, Any] | None:
        """The verified claims of the request's bearer token, None when it has none valid."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or len(token) > MAX_TOKEN_BYTES or \
                not TOKEN_SHAPE.fullmatch(token):
            return None
        claims: dict[str, Any] | None = self._verifier.verify(token)
        return claims

    async def authenticate(self, request: web.Request) -> Identity | None:
        claims = self.decode(request)
        return Identity(claims["sub"], claims) if claims else None

    def routes(self) -> list[web.RouteDef]:
        if self.jwks is None:
            return []
        body = self.jwks

        async def jwks(request: web.Request) -> web.Response:
            return json_response(body)

        return [web.get("/.well-known/jwks.json", jwks)]


class RevocableJwt(JwtVariant):
    """HS256 JWTs plus a Redis denylist of revoked `jti`, each kept only until its `exp`."""

    PREFIX = "authscale_denylist_"

    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        super().__init__(settings)
        self.redis = redis
        self.index = ExpiryIndex(redis, "authscale_denylist_live")

    async def authenticate(self, request: web.Request) -> Identity | None:
        claims = self.decode(request)
        if claims is None:
            return None
        try:
            revoked = await self.redis.exists(self.PREFIX + str(claims["jti"]))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if revoked else Identity(claims["sub"], claims)

    def _deny(self, pipe: Any, jti: str, exp: int) -> None:
        pipe.set(self.PREFIX + jti, b"1", exat=exp)

    async def revoke(self, request: web.Request, identity: Identity,
                     response: web.StreamResponse) -> None:
        claims = identity.handle
        if claims["exp"] <= time.time():
            return  # already expired: nothing to keep
        pipe = self.redis.pipeline(transaction=False)
        self._deny(pipe, str(claims["jti"]), int(claims["exp"]))
        self.index.add(pipe, {str(claims["jti"]): float(claims["exp"])})
        try:
            await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def live_sessions(self) -> int:
        return await self.index.count()

    async def seed(self, count: int, chunk_done: Callable[[], None] | None = None) -> int:
        await self.index.seed(self.PREFIX, count, int(time.time()) + self.ttl, "1")
        return count
