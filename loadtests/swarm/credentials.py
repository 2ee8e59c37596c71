"""What a login gives a client, and how it presents it: the one parser of a login answer.

Used inside Locust (every simulated user), by the runner's verification and probes, and by
the tests. How a variant carries its credential (cookie, bearer or nothing) comes from the
variant registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from servers.variants.registry import SESSION_COOKIE, variant


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential of `variant` as a client presents it.

    `secret` is the JWT, or the session cookie's value exactly as the server set it (quotes
    included, as a browser sends it back); None for the control, which needs none.
    """

    variant: str
    secret: str | None
    user: str = ""
    # Derived once: Locust presents them on every request.
    headers: dict[str, str] = field(init=False, compare=False)
    me_body: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        kind = variant(self.variant).credential
        headers = {}
        if self.secret is not None and kind == "bearer":
            headers = {"Authorization": f"Bearer {self.secret}"}
        elif self.secret is not None and kind == "cookie":
            headers = {"Cookie": f"{SESSION_COOKIE}={self.secret}"}
        object.__setattr__(self, "headers", headers)
        user = "anonymous" if kind == "none" else self.user
        object.__setattr__(self, "me_body", json.dumps(
            {"user": user, "variant": self.variant}, separators=(",", ":")).encode())

    @property
    def header_line(self) -> str:
        """The request header that carries it, as sent ("" for the control)."""
        return "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())

    def tampered(self) -> Credential:
        """The same credential with one character in its middle changed."""
        assert self.secret, "the control has no credential to tamper with"
        middle = len(self.secret) // 2
        flipped = "A" if self.secret[middle] != "A" else "B"
        return Credential(self.variant, self.secret[:middle] + flipped +
                          self.secret[middle + 1:], self.user)


def from_login(variant_name: str, username: str, set_cookie: str | None,
               body: bytes) -> Credential | None:
    """The credential a 200 login answer carries (its Set-Cookie header and body), as the
    variant issues it; None when the answer carries none."""
    kind = variant(variant_name).credential
    if kind == "none":
        return Credential(variant_name, None, username)
    if kind == "bearer":
        try:
            token = json.loads(body).get("access_token")
        except (ValueError, AttributeError):
            return None
        return Credential(variant_name, token, username) if isinstance(token, str) else None
    name, _, value = (set_cookie or "").split(";", 1)[0].partition("=")
    if name.strip() != SESSION_COOKIE or not value:
        return None
    return Credential(variant_name, value, username)


def user_class_for(variant_name: str) -> str:
    """The Locust user class (locustfile) that carries this variant's credential."""
    return "BearerUser" if variant(variant_name).credential == "bearer" else "CookieUser"
