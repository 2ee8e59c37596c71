"""Verify a server before any load (TechEmpower-style), and measure its credential's bytes.

A variant that fails verification is reported as failed and never measured.
"""

from __future__ import annotations

import http.client
import json
import statistics
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

from loadtests.swarm.credentials import Credential, from_login


@dataclass
class Verification:
    variant: str
    url: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    # Bytes on the wire: the credential's request header line, and what login sends back.
    header_bytes: int = 0
    credential_bytes: int = 0
    login_response_bytes: int = 0
    set_cookie_bytes: int = 0

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _request(url: str, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes, int]:
    """One request; returns status, headers, body and the response's total bytes."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        head = sum(len(k) + len(v) + 4 for k, v in resp.getheaders())
        size = len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + head + 2 + len(data)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, size
    finally:
        conn.close()


@dataclass(frozen=True)
class Login:
    """A fresh login: the credential, and the bytes its answer took on the wire."""

    credential: Credential
    response_bytes: int
    set_cookie_bytes: int


def log_in(url: str, variant: str, k: int = 1) -> Login:
    """Log in as user<k>; raises ValueError when the login is refused or carries nothing."""
    login = json.dumps({"username": f"user{k}", "password": f"pw-{k}"}).encode()
    status, headers, body, size = _request(url, "POST", "/login", login,
                                           {"Content-Type": "application/json"})
    if status != 200:
        raise ValueError(f"login answered {status} {body[:100]!r}")
    set_cookie = headers.get("set-cookie")
    credential = from_login(variant, f"user{k}", set_cookie, body)
    if credential is None:
        raise ValueError(f"the login answer carried no {variant} credential")
    return Login(credential, size, len(f"Set-Cookie: {set_cookie}\r\n") if set_cookie else 0)


def verify_server(url: str, variant: str) -> Verification:
    """healthz, login, a protected request, a bad credential refused: or the reason not."""
    result = Verification(variant, url)
    try:
        status, _, body, _ = _request(url, "GET", "/healthz")
        if status != 200 or json.loads(body).get("variant") != variant:
            result.fail(f"/healthz answered {status} {body[:100]!r}")
            return result
        login = log_in(url, variant)
        credential = login.credential
        result.login_response_bytes = login.response_bytes
        result.set_cookie_bytes = login.set_cookie_bytes
        if credential.secret is not None:
            result.credential_bytes = len(credential.secret)
            result.header_bytes = len(credential.header_line)
        status, headers, body, _ = _request(url, "GET", "/me", headers=credential.headers)
        if status != 200 or json.loads(body) != json.loads(credential.me_body):
            result.fail(f"/me with a fresh credential answered {status} {body[:100]!r}")
        if "server-timing" not in headers:
            result.fail("/me carried no Server-Timing header")
        if credential.secret is not None:
            status, _, body, _ = _request(url, "GET", "/me",
                                          headers=credential.tampered().headers)
            if status != 401:
                result.fail(f"a tampered credential got {status}, not 401")
    except (OSError, ValueError, KeyError) as exc:
        result.fail(f"{type(exc).__name__}: {exc}")
    return result


def probe_auth(url: str, variant: str, requests: int, warmup: int = 200) -> dict[str, float]:
    """In-server auth cost with nothing else in flight: `requests` sequential GET /items on
    one keep-alive connection, timed by the server's own Server-Timing (microseconds).

    Under load that figure also holds the time other requests take while a Redis call
    awaits; one request at a time it is the auth path alone.
    """
    credential = log_in(url, variant).credential
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    auth_us: list[float] = []
    try:
        for i in range(warmup + requests):
            conn.request("GET", "/items", headers=credential.headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise ValueError(f"GET /items answered {resp.status} during the auth probe")
            if i >= warmup:
                timing = resp.getheader("Server-Timing", "")
                auth_us.append(float(timing.partition(";dur=")[2]) * 1000)
    finally:
        conn.close()
    quantiles = statistics.quantiles(auth_us, n=10)
    return {"auth_us_p50": round(statistics.median(auth_us), 2),
            "auth_us_p90": round(quantiles[-1], 2), "probe_requests": requests}
