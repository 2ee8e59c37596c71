"""JWT variants refuse every forged, confused or incomplete token (401, never 5xx)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from servers.app import VARIANT
from servers.variants.registry import BY_NAME
from servers.variants.tokens import AUDIENCE, ISSUER, generate_key
from tests.conftest import JWT_VARIANTS, MakeClient, login

pytestmark = pytest.mark.parametrize("variant", JWT_VARIANTS)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(header: dict, claims: dict, signature: str = "") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     signature])


def good_claims(**changes) -> dict:
    now = int(time.time())
    claims = {"sub": "user1", "iat": now, "exp": now + 600, "jti": "j" * 32,
              "iss": ISSUER, "aud": AUDIENCE}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def assert_refused(client, token: str) -> None:
    resp = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401, token
    assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_forgeries_refused(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    real = (await login(client, variant)).secret
    header_b64, payload_b64, signature = real.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    other_key = generate_key(header["alg"])
    forged = [
        unsigned({"alg": "none", "typ": "JWT"}, payload),
        unsigned({"alg": "None", "typ": "JWT"}, payload),
        f"{header_b64}.{payload_b64}.",  # signature stripped
        f"{header_b64}.{payload_b64}.{signature[:-4]}",  # truncated
        f"{header_b64}.{b64(json.dumps({**payload, 'sub': 'user2'}).encode())}.{signature}",
        jwt.encode(payload, other_key, algorithm=header["alg"]),  # another key
        real + "A",
        "..",
        "a.b.c.d",
    ]
    for token in forged:
        await assert_refused(client, token)


async def test_claims_enforced(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    app_variant = client.app[VARIANT]
    key, alg = app_variant.signing_key, app_variant.algorithm
    now = int(time.time())
    bad_claims = [
        good_claims(exp=now - 5),
        good_claims(iat=now + 3600, nbf=now + 3600),
        good_claims(iss="someone-else"),
        good_claims(aud="another-api"),
        *[good_claims(**{missing: None}) for missing in ("sub", "iat", "exp", "jti", "iss", "aud")],
    ]
    for claims in bad_claims:
        await assert_refused(client, jwt.encode(claims, key, algorithm=alg))
    # The same key with every claim right is accepted: the refusals above are the claims'.
    ok = await client.get("/me", headers={
        "Authorization": f"Bearer {jwt.encode(good_claims(), key, algorithm=alg)}"})
    assert ok.status == 200


async def test_algorithm_confusion(make_client: MakeClient, variant: str) -> None:
    """HS256 signed with the server's public key (the classic RS/ES -> HS confusion)."""
    client = await make_client(variant)
    resp = await client.get("/.well-known/jwks.json")
    if resp.status != 200:
        pytest.skip("symmetric variant: no public key to confuse")
    jwk = jwt.PyJWKSet.from_dict(await resp.json()).keys[0]
    pem = jwk.key.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(good_claims()).encode())}"
    for secret in (pem, pem.strip()):
        sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await assert_refused(client, f"{signing_input}.{b64(sig)}")


async def test_given_keys_are_checked(make_client: MakeClient, variant: str) -> None:
    wrong = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    if BY_NAME[variant].algorithm == "HS256":
        with pytest.raises(ValueError, match="at least 32 bytes"):
            await make_client(variant, jwt_key=b"short")
    else:
        with pytest.raises(ValueError, match="key"):
            await make_client(variant, jwt_key=wrong)
