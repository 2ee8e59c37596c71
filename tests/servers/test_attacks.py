"""OWASP JWT and session cheat-sheet attacks against every variant: refused, never a 5xx."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time

import jwt
import pytest

from servers.app import VARIANT
from servers.variants.tokens import AUDIENCE, ISSUER, generate_key
from tests.conftest import JWT_VARIANTS, SESSION_VARIANTS, Credential, MakeClient, login


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims() -> dict:
    now = int(time.time())
    return {"sub": "user1", "iat": now, "exp": now + 600, "jti": secrets.token_hex(16),
            "iss": ISSUER, "aud": AUDIENCE}


async def refused(client, token: str) -> None:
    resp = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status in (400, 401, 431), (resp.status, token[:80])


@pytest.mark.parametrize("variant", JWT_VARIANTS)
async def test_header_tricks_with_an_attacker_key(make_client: MakeClient, variant: str) -> None:
    """kid / jku / x5u / jwk point elsewhere: the server ignores them and uses its own key."""
    client = await make_client(variant)
    algorithm = client.app[VARIANT].algorithm
    attacker = generate_key(algorithm)
    public_jwk = None if algorithm == "HS256" else json.loads(
        jwt.get_algorithm_by_name(algorithm).to_jwk(attacker.public_key()))
    tricks = [{"kid": "../../../../dev/null"}, {"kid": "' OR '1'='1"},
              {"jku": "http://127.0.0.1:1/jwks.json"}, {"x5u": "http://127.0.0.1:1/cert.pem"}]
    if public_jwk is not None:
        tricks.append({"jwk": public_jwk})  # "trust the key I embedded"
    for headers in tricks:
        await refused(client, jwt.encode(claims(), attacker, algorithm=algorithm,
                                         headers=headers))


@pytest.mark.parametrize("variant", JWT_VARIANTS)
async def test_crit_padding_and_size(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    app_variant = client.app[VARIANT]
    key, algorithm = app_variant.signing_key, app_variant.algorithm
    # Signed with the server's own key, but with a critical extension it does not know.
    await refused(client, jwt.encode(claims(), key, algorithm=algorithm,
                                     headers={"crit": ["x-authscale"], "x-authscale": 1}))
    good = jwt.encode(claims(), key, algorithm=algorithm)
    header, payload, signature = good.split(".")
    for padded in (f"{header}==.{payload}.{signature}", f"{header}.{payload}=.{signature}",
                   f"{header}.{payload}.{signature}==", f"{header}.{payload}.{signature}%3D",
                   f" {good}", f"{good}.", good.replace("-", "+").replace("_", "/")
                   if ("-" in good or "_" in good) else good + "!"):
        await refused(client, padded)
    big = jwt.encode({**claims(), "pad": "x" * 9000}, key, algorithm=algorithm)
    assert len(big) > 9 * 1024
    await refused(client, big)
    # The untouched token still works: every refusal above was the attack's.
    ok = await client.get("/me", headers={"Authorization": f"Bearer {good}"})
    assert ok.status == 200


@pytest.mark.parametrize("variant", ("session-memory", "session-redis"))
async def test_session_fixation_and_forgery(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    planted = secrets.token_hex(16)  # an id the attacker makes the victim carry
    resp = await client.post("/login", json={"username": "user1", "password": "pw-1"},
                             headers={"Cookie": f"authscale_session={planted}"})
    assert resp.status == 200
    issued = resp.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    assert issued != planted
    fixated = await client.get("/me", headers={"Cookie": f"authscale_session={planted}"})
    assert fixated.status == 401
    for forged in (secrets.token_hex(16), "0" * 32, issued[:-1], issued.upper(), "../" * 10):
        resp = await client.get("/me", headers={"Cookie": f"authscale_session={forged}"})
        assert resp.status == 401, forged


@pytest.mark.parametrize(("issuer", "verifier"), [
    ("session-memory", "session-redis"), ("session-redis", "session-memory"),
    ("session-cookie", "session-cookie"), ("session-cookie", "session-memory"),
    ("jwt-hs256", "jwt-hs256"), ("jwt-hs256", "jwt-hs256-revocable"),
])
async def test_credential_from_another_server_is_refused(make_client: MakeClient, issuer: str,
                                                         verifier: str) -> None:
    """Each server has its own store or key: a credential it did not issue means nothing."""
    source = await make_client(issuer)
    credential = await login(source, issuer)
    target = await make_client(verifier)
    presented = Credential(verifier, credential.secret)
    if issuer.startswith("jwt-") != verifier.startswith("jwt-"):
        presented = Credential(issuer, credential.secret)
    resp = await target.get("/me", headers=presented.headers)
    assert resp.status == 401


@pytest.mark.parametrize("variant", SESSION_VARIANTS)
async def test_reuse_after_logout_and_expired_cookie(make_client: MakeClient,
                                                     variant: str) -> None:
    client = await make_client(variant, session_ttl=1)
    credential = await login(client, variant)
    assert (await client.post("/logout", headers=credential.headers)).status == 204
    if variant != "session-cookie":  # a server-side session is gone at once
        assert (await client.get("/me", headers=credential.headers)).status == 401
    fresh = await login(client, variant)
    deadline = time.monotonic() + 6
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = (await client.get("/me", headers=fresh.headers)).status
        if status == 200:
            await asyncio.sleep(0.25)
    assert status == 401  # every session variant expires, the encrypted cookie included
