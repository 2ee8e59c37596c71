"""The HTTP contract (docs/api.md), run identically against every variant over real sockets."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servers.app import ITEMS_BODY
from servers.variants.registry import BY_NAME, SESSION_COOKIE
from servers.variants.registry import NAMES as VARIANTS
from tests.conftest import (
    ADMIN_TOKEN,
    REVOCABLE,
    SESSION_VARIANTS,
    Credential,
    MakeClient,
    login,
)

pytestmark = pytest.mark.parametrize("variant", VARIANTS)
# The variants whose seeded entries are sessions a client can present.
SEEDED_SESSIONS = ("session-memory", "session-redis")


def server_timing_ms(resp) -> float:
    """The auth time the server reports: milliseconds to the tenth of a microsecond."""
    found = re.fullmatch(r"auth;dur=(\d+\.\d{4})", resp.headers["Server-Timing"])
    assert found, resp.headers["Server-Timing"]
    return float(found.group(1))


async def test_healthz(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "variant": variant}


async def test_login_answer_and_cookie_flags(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    resp = await client.post("/login", json={"username": "user7", "password": "pw-7"})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    if variant.startswith("jwt-"):
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        assert body["access_token"].count(".") == 2
    else:
        assert body == {"user": "user7"}
    if variant in SESSION_VARIANTS:
        set_cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie
        assert "SameSite=Lax" in set_cookie
        assert "Path=/" in set_cookie
        assert "Secure" not in set_cookie
    else:
        assert "Set-Cookie" not in resp.headers


async def test_secure_cookie_setting(make_client: MakeClient, variant: str) -> None:
    if variant not in SESSION_VARIANTS:
        pytest.skip("no cookie on this variant")
    client = await make_client(variant, cookie_secure=True)
    resp = await client.post("/login", json={"username": "user1", "password": "pw-1"})
    assert "Secure" in resp.headers["Set-Cookie"]


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"username": "user1", "password": "wrong"}, 401, "invalid_credentials"),
    ({"username": "user51", "password": "pw-51"}, 401, "invalid_credentials"),
    ({"username": "admin", "password": "pw-1"}, 401, "invalid_credentials"),
    ({"username": "user1"}, 400, "bad_request"),
    ({"username": 1, "password": "pw-1"}, 400, "bad_request"),
    ({"username": "user1", "password": None}, 400, "bad_request"),
    (["user1", "pw-1"], 400, "bad_request"),
    ("not json {", 400, "bad_request"),
    (b"\xff\xfe\x00garbage", 400, "bad_request"),
])
async def test_login_refusals(make_client: MakeClient, variant: str, body, status: int,
                              error: str) -> None:
    client = await make_client(variant)
    if isinstance(body, bytes | str):
        resp = await client.post("/login", data=body,
                                 headers={"Content-Type": "application/json"})
    else:
        resp = await client.post("/login", json=body)
    assert resp.status == status
    assert (await resp.json())["error"] == error
    assert "Set-Cookie" not in resp.headers


async def test_me_items_with_credential(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    cred = await login(client, variant, k=3)
    resp = await client.get("/me", headers=cred.headers)
    assert resp.status == 200
    expected_user = "anonymous" if variant == "none" else "user3"
    assert await resp.json() == {"user": expected_user, "variant": variant}
    assert 0 < server_timing_ms(resp) < 1000
    resp = await client.get("/items", headers=cred.headers)
    assert resp.status == 200
    assert await resp.read() == ITEMS_BODY
    assert 900 <= len(ITEMS_BODY) <= 1200
    assert isinstance(json.loads(ITEMS_BODY), list)


async def test_refused_without_or_with_bad_credential(make_client: MakeClient,
                                                      variant: str) -> None:
    if variant == "none":
        pytest.skip("the control accepts everyone")
    client = await make_client(variant)
    cred = await login(client, variant)
    bad = [Credential(variant, None), cred.tampered(), Credential(variant, "x"),
           Credential(variant, "a" * 3000)]
    for attempt in bad:
        for path, method in (("/me", "GET"), ("/items", "GET"), ("/logout", "POST")):
            resp = await client.request(method, path, headers=attempt.headers)
            assert resp.status == 401, (path, attempt)
            assert await resp.json() == {"error": "unauthorized"}
            assert 0 < server_timing_ms(resp) < 1000
            if variant.startswith("jwt-"):
                assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_fresh_credential_each_login(make_client: MakeClient, variant: str) -> None:
    if variant == "none":
        pytest.skip("the control issues nothing")
    client = await make_client(variant)
    first, second = await login(client, variant), await login(client, variant)
    assert first.secret != second.secret


async def test_logout(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    cred = await login(client, variant)
    resp = await client.post("/logout", headers=cred.headers)
    assert resp.status == 204
    if variant == "session-cookie":
        assert "authscale_session=\"\"" in resp.headers["Set-Cookie"]  # client told to forget
    after = await client.get("/me", headers=cred.headers)
    if variant in REVOCABLE:
        assert after.status == 401
    else:
        # Stateless credentials stay valid until they expire: measured, not hidden.
        assert after.status == 200


async def test_expiry(make_client: MakeClient, variant: str) -> None:
    if variant == "none":
        pytest.skip("the control issues nothing")
    client = await make_client(variant, session_ttl=1, token_ttl=1)
    cred = await login(client, variant)
    assert (await client.get("/me", headers=cred.headers)).status == 200
    deadline = time.monotonic() + 6
    status = 200
    while time.monotonic() < deadline and status == 200:
        await asyncio.sleep(0.25)
        status = (await client.get("/me", headers=cred.headers)).status
    assert status == 401


async def test_metrics(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    cred = await login(client, variant)
    for _ in range(3):
        await client.get("/me", headers=cred.headers)
    await client.get("/items", headers={"Authorization": "Bearer nope",
                                        "Cookie": "authscale_session=nope"})
    text = await (await client.get("/metrics")).text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {(s.labels["route"], s.labels["status"]): s.value
                for s in families["authscale_requests"].samples if s.name.endswith("_total")}
    assert requests[("/me", "200")] == 3
    assert requests[("/login", "200")] == 1
    auth_counts = {s.labels["outcome"]: s.value for s in families["authscale_auth_seconds"].samples
                   if s.name.endswith("_count")}
    control = variant == "none"  # the control accepts the bad credential too
    assert auth_counts["ok"] == (4 if control else 3)
    assert auth_counts["unauthorized"] == (0 if control else 1)
    assert families["process_resident_memory_bytes"].samples[0].value > 10e6
    if variant in REVOCABLE:
        assert families["authscale_live_sessions"].samples[0].value == (
            0 if variant == "jwt-hs256-revocable" else 1)
    else:
        assert "authscale_live_sessions" not in families


async def test_gc_pauses_on_metrics(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)

    def pauses(text: str) -> dict[tuple[str, str], float]:
        return {(s.name, s.labels["generation"]): s.value
                for f in text_string_to_metric_families(text) if f.name.startswith(
                    "authscale_gc_pause") for s in f.samples if "generation" in s.labels}

    before = pauses(await (await client.get("/metrics")).text())
    # A full collection over some fresh garbage: timed, counted in generation 2.
    garbage = [[i] for i in range(200_000)]
    gc.collect()
    del garbage
    after = pauses(await (await client.get("/metrics")).text())
    full = ("authscale_gc_pause_seconds_count", "2")
    assert after[full] >= before.get(full, 0) + 1
    total = after[("authscale_gc_pause_seconds_sum", "2")]
    longest = after[("authscale_gc_pause_longest_seconds", "2")]
    assert 0 < longest <= total < 10


async def test_seed(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    headers = {"X-Admin-Token": ADMIN_TOKEN}
    resp = await client.post("/admin/seed", json={"count": 100_000}, headers=headers)
    assert resp.status == 200
    body = await resp.json()
    if variant not in REVOCABLE:
        assert body == {"created": 0, "live_sessions": 0}
        return
    ids = body.pop("seeded_ids", None)
    assert body == {"created": 100_000, "live_sessions": 100_000}
    text = await (await client.get("/metrics")).text()
    gauge = next(f for f in text_string_to_metric_families(text)
                 if f.name == "authscale_live_sessions")
    assert gauge.samples[0].value == 100_000
    # Real logins still work beside the seeded population.
    cred = await login(client, variant)
    assert (await client.get("/me", headers=cred.headers)).status == 200
    if variant not in SEEDED_SESSIONS:
        assert ids is None  # revoked token ids: nothing a client presents
        return
    # Every seeded session can be presented, its id derived from the salt and its number.
    assert ids is not None and ids["first"] == 1 and ids["last"] == 100_000
    assert re.fullmatch(r"[0-9a-f]{16}", ids["salt"])

    async def me(number: int) -> int:
        cookie = f"{SESSION_COOKIE}={ids['salt']}{number:016x}"
        return (await client.get("/me", headers={"Cookie": cookie})).status

    assert [await me(n) for n in (1, 54_321, 100_000, 100_001)] == [200, 200, 200, 401]
    # A second seed continues the numbering under the same salt.
    more = await (await client.post("/admin/seed", json={"count": 10}, headers=headers)).json()
    assert more["seeded_ids"] == {**ids, "last": 100_010}
    assert await me(100_010) == 200


async def test_seed_guarded(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    wrong = await client.post("/admin/seed", json={"count": 1},
                              headers={"X-Admin-Token": ADMIN_TOKEN + "x"})
    assert wrong.status == 401
    for bad in ({"count": -1}, {"count": "10"}, {"count": True}, {}, [1]):
        resp = await client.post("/admin/seed", json=bad, headers={"X-Admin-Token": ADMIN_TOKEN})
        assert resp.status == 400, bad
    closed = await make_client(variant, admin_token=None)
    resp = await closed.post("/admin/seed", json={"count": 1},
                             headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 404


async def test_jwks(make_client: MakeClient, variant: str) -> None:
    import jwt

    client = await make_client(variant)
    resp = await client.get("/.well-known/jwks.json")
    # The asymmetric JWT variants publish their public key; nothing else does.
    if BY_NAME[variant].algorithm in (None, "HS256"):
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"
        return
    assert resp.status == 200
    jwks = jwt.PyJWKSet.from_dict(await resp.json())
    cred = await login(client, variant)
    key = jwks.keys[0]
    assert key.key_id == jwt.get_unverified_header(cred.secret)["kid"]
    claims = jwt.decode(cred.secret, key, audience="authscale-api", issuer="authscale")
    assert claims["sub"] == "user1"
    assert set(claims) == {"sub", "iat", "exp", "jti", "iss", "aud"}


async def test_unknown_route_and_method(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    resp = await client.get("/nope")
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found"}
    resp = await client.get("/login")
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"


async def test_oversized_header_is_4xx(make_client: MakeClient, variant: str) -> None:
    client = await make_client(variant)
    resp = await client.get("/me", headers={"Authorization": "Bearer " + "a" * 9000,
                                            "Cookie": "authscale_session=" + "b" * 9000})
    assert 400 <= resp.status < 500
