"""The libraries that verify a JWT, one small class each, behind one call: `verify(token)`,
the token's claims when it is valid under the variant's one algorithm and key with every
claim required and checked, else None.

Every variant's token is issued the same way (PyJWT, servers.variants.tokens) and passes
the same strict shape check before any library sees it (canonical base64url, at most
4,096 bytes: tokens.TOKEN_SHAPE), so a library is compared on verifying, nothing else. The
registry names each variant's library (`library`); the methodology says why these.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

ISSUER = "authscale"
AUDIENCE = "authscale-api"
REQUIRED_CLAIMS = ("sub", "iat", "exp", "jti", "iss", "aud")


class PyJwtVerifier:
    """PyJWT (pure Python on top of `cryptography`): the library most Python services use."""

    def __init__(self, algorithm: str, verify_key: Any) -> None:
        self._decoder = jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})
        self._algorithms = [algorithm]
        self._key = verify_key

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = self._decoder.decode(
                token, self._key, algorithms=self._algorithms, audience=AUDIENCE,
                issuer=ISSUER)
        except jwt.PyJWTError:
            return None
        return claims


def public_pem(verify_key: Any) -> bytes:
    return bytes(verify_key.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo))


class OxyJwtVerifier:
    """oxyjwt: Rust's jsonwebtoken with aws-lc-rs behind PyJWT's API (a compiled verifier:
    the signature, the JSON and the claim checks in Rust), used through that public API
    exactly as PyJWT is above: its `PyJWT` class with every claim required, the key
    prepared once."""

    def __init__(self, algorithm: str, verify_key: Any) -> None:
        import oxyjwt

        self._errors = oxyjwt.PyJWTError
        self._decoder = oxyjwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})
        self._algorithms = [algorithm]
        if algorithm == "HS256":
            self._key = oxyjwt.DecodingKey.from_secret(verify_key)
        elif algorithm == "EdDSA":
            self._key = oxyjwt.DecodingKey.from_ed_pem(public_pem(verify_key))
        else:
            raise ValueError(f"no oxyjwt verifier for {algorithm}")

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = self._decoder.decode(
                token, self._key, algorithms=self._algorithms, audience=AUDIENCE,
                issuer=ISSUER)
        except self._errors:
            return None
        return claims


class JoserfcVerifier:
    """joserfc (authlib's successor for JOSE, pure Python on top of `cryptography`): the
    token's signature under the one algorithm, then its registry of claims, every one
    essential, issuer and audience fixed, times checked."""

    def __init__(self, algorithm: str, verify_key: Any) -> None:
        from joserfc import jwt as jose_jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import OctKey

        if algorithm != "HS256":
            raise ValueError(f"no joserfc verifier for {algorithm}")
        self._jwt = jose_jwt
        self._errors = (JoseError, ValueError, TypeError)
        self._key = OctKey.import_key(verify_key)
        self._algorithms = [algorithm]
        self._claims = jose_jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            **{name: {"essential": True} for name in ("sub", "iat", "exp", "jti")})

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            decoded = self._jwt.decode(token, self._key, algorithms=self._algorithms)
            self._claims.validate(decoded.claims)
        except self._errors:
            return None
        claims: dict[str, Any] = decoded.claims
        # joserfc checks that `iat` is a number; an `iat` in the future is refused here as
        # PyJWT and oxyjwt refuse it.
        if claims["iat"] > time.time():
            return None
        return claims


VERIFIERS: dict[str, type[PyJwtVerifier] | type[OxyJwtVerifier] | type[JoserfcVerifier]] = {
    "PyJWT": PyJwtVerifier, "oxyjwt": OxyJwtVerifier, "joserfc": JoserfcVerifier}


def verifier(library: str, algorithm: str, verify_key: Any) -> Any:
    """The library's verifier for one algorithm and key, prepared once."""
    return VERIFIERS[library](algorithm, verify_key)
