"""Hypothesis-driven requests against every variant over real sockets: never a 5xx.

Bodies, headers, cookies and tokens built from near-valid parts. FUZZ_EXAMPLES sets the
examples per variant (CI: 1000 on each of the 13 variants; `make fuzz` runs ten times as
many).
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtests.runner.processes import RedisHandle, ServerHandle, start_server
from loadtests.runner.verify import log_in
from servers.variants.registry import NAMES as VARIANTS
from servers.variants.registry import variant as variant_spec

# Real processes for seconds at a time: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
ROUTES = ["/me", "/items", "/logout", "/login", "/healthz", "/metrics", "/admin/seed",
          "/.well-known/jwks.json", "/nope", "/me/../items", "/%00", "/login?x=1"]
ALLOWED = {200, 204, 400, 401, 404, 405, 413, 431}
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=300)


@pytest.fixture(scope="module", params=VARIANTS)
def server(request: pytest.FixtureRequest, redis_server: RedisHandle
           ) -> Iterator[tuple[ServerHandle, dict[str, str]]]:
    variant = request.param
    handle = start_server(variant, redis_url=redis_server.url, extra=("--users", "20"),
                          env={**os.environ, "AUTHSCALE_ADMIN_TOKEN": "f" * 32})
    try:
        yield handle, real_credential(handle.url, variant)
    finally:
        handle.stop()


def real_credential(url: str, variant: str) -> dict[str, str]:
    """The parts a valid credential is made of, for the fuzzer to splice and mutate."""
    secret = log_in(url, variant).credential.secret
    kind = variant_spec(variant).credential
    return {"token" if kind == "bearer" else "cookie": secret} if secret else {}


def connect(url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)


@st.composite
def near_valid(draw: st.DrawFn, part: str) -> str:
    """A credential made of real pieces, cut, swapped, repeated or mutated."""
    pieces = part.split(".") if part else [""]
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return part
    if choice == 1:
        return ".".join(draw(st.permutations(pieces)))
    if choice == 2:
        cut = draw(st.integers(0, len(part)))
        return part[:cut]
    if choice == 3:
        i = draw(st.integers(0, max(0, len(part) - 1)))
        return part[:i] + draw(st.sampled_from("A-_=./+ ")) + part[i + 1:]
    if choice == 4:
        return ".".join([*pieces, draw(printable)])
    return draw(printable)


def request_strategy(credential: dict[str, str]) -> st.SearchStrategy:
    token = credential.get("token", "")
    cookie = credential.get("cookie", "")
    headers = st.fixed_dictionaries({}, optional={
        "Authorization": st.one_of(near_valid(token).map(lambda t: f"Bearer {t}"), printable),
        "Cookie": st.one_of(near_valid(cookie).map(lambda c: f"authscale_session={c}"),
                            printable),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "", "x/y"]),
        "X-Admin-Token": printable,
    })
    body = st.one_of(st.none(), st.binary(max_size=400),
                     st.dictionaries(st.sampled_from(["username", "password", "count"]),
                                     st.one_of(st.none(), st.integers(), printable,
                                               st.booleans(), st.lists(st.integers())))
                     .map(lambda d: json.dumps(d).encode()))
    return st.tuples(st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
                     st.sampled_from(ROUTES), headers, body)


def test_fuzz_never_5xx(server: tuple[ServerHandle, dict[str, str]]) -> None:
    handle, credential = server
    conn = [connect(handle.url)]
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request_strategy(credential))
    def one(case: tuple[str, str, dict[str, str], bytes | None]) -> None:
        method, path, headers, body = case
        try:
            conn[0].request(method, path, body=body, headers=headers)
            resp = conn[0].getresponse()
            resp.read()
        except (http.client.HTTPException, OSError):
            conn[0].close()  # the server may close a connection it refused: reconnect
            conn[0] = connect(handle.url)
            conn[0].request(method, path, body=body, headers=headers)
            resp = conn[0].getresponse()
            resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            conn[0].close()
            conn[0] = connect(handle.url)
        seen[resp.status] = seen.get(resp.status, 0) + 1
        assert resp.status in ALLOWED, (resp.status, case)

    one()
    conn[0].close()
    assert sum(seen.values()) >= EXAMPLES
    assert handle.child.alive()
