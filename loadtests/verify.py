"""Verify a server before any load (TechEmpower-style), and measure its credential's bytes.

A variant that fails verification is reported as failed and never measured.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

from servers.settings import BEARER_VARIANTS


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


def verify_server(url: str, variant: str) -> Verification:
    """healthz, login, a protected request, a bad credential refused: or the reason not."""
    result = Verification(variant, url)
    try:
        status, _, body, _ = _request(url, "GET", "/healthz")
        if status != 200 or json.loads(body).get("variant") != variant:
            result.fail(f"/healthz answered {status} {body[:100]!r}")
            return result
        login = json.dumps({"username": "user1", "password": "pw-1"}).encode()
        status, headers, body, size = _request(url, "POST", "/login", login,
                                               {"Content-Type": "application/json"})
        if status != 200:
            result.fail(f"login answered {status} {body[:100]!r}")
            return result
        result.login_response_bytes = size
        if variant in BEARER_VARIANTS:
            token = json.loads(body)["access_token"]
            header_name, credential = "Authorization", f"Bearer {token}"
            bad = "Bearer " + token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
        elif variant == "none":
            header_name, credential, bad = "", "", ""
        else:
            set_cookie = headers.get("set-cookie", "")
            result.set_cookie_bytes = len(f"Set-Cookie: {set_cookie}\r\n")
            pair = set_cookie.split(";", 1)[0]
            header_name, credential = "Cookie", pair
            bad = pair[:-6] + ("AAAAAA" if not pair.endswith("AAAAAA") else "BBBBBB")
        if header_name:
            result.credential_bytes = len(credential.split(" ", 1)[-1].split("=", 1)[-1])
            result.header_bytes = len(f"{header_name}: {credential}\r\n")
        auth = {header_name: credential} if header_name else {}
        status, headers, body, _ = _request(url, "GET", "/me", headers=auth)
        expected_user = "anonymous" if variant == "none" else "user1"
        if status != 200 or json.loads(body).get("user") != expected_user:
            result.fail(f"/me with a fresh credential answered {status} {body[:100]!r}")
        if "server-timing" not in headers:
            result.fail("/me carried no Server-Timing header")
        if header_name:
            status, _, body, _ = _request(url, "GET", "/me", headers={header_name: bad})
            if status != 401:
                result.fail(f"a tampered credential got {status}, not 401")
    except (OSError, ValueError, KeyError) as exc:
        result.fail(f"{type(exc).__name__}: {exc}")
    return result
