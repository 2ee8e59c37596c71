"""Every variant's facts in one table; the servers, the runner and the report derive from it.

Adding a variant is a row here and a module implementing `AuthVariant`. The runner writes
each variant's `facts()` into the run's manifest, so the analysis, which imports nothing of
ours, reads the same facts from the run folder.

Pure data and the standard library: the Locust processes import this too.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from servers.settings import Settings
    from servers.variants.base import AuthVariant

# Environment variables that carry secrets, so they never appear in `ps` output.
ENV_JWT_KEY = "AUTHSCALE_JWT_KEY"
ENV_JWT_KEY_FILE = "AUTHSCALE_JWT_KEY_FILE"
ENV_COOKIE_KEY = "AUTHSCALE_COOKIE_KEY"
ENV_ADMIN_TOKEN = "AUTHSCALE_ADMIN_TOKEN"
# The session variants' cookie; the load generator presents it.
SESSION_COOKIE = "authscale_session"

Credential = Literal["none", "cookie", "bearer"]
# Where a session lives: nowhere (the control), the server process, Redis, or the client.
State = Literal["none", "process", "redis", "client"]
# The secret a variant's replicas must share: a Fernet key, an HS256 secret, a PEM key.
Secret = Literal["none", "cookie_key", "jwt_secret", "jwt_private_key"]


@dataclass(frozen=True)
class Variant:
    name: str
    credential: Credential
    state: State
    # Logout makes the credential unusable at once (the others: valid until it expires).
    logout_revokes: bool
    # "module:Class" of its AuthVariant, imported only when a server builds it.
    implementation: str
    secret: Secret = "none"
    algorithm: str | None = None
    # Revoked credentials kept server-side for a client-side state (the JWT denylist).
    denylist: Literal["none", "redis"] = "none"
    # The library that verifies its tokens (servers.variants.verifiers), for a JWT variant:
    # the name it goes by (PyJWT, oxyjwt, joserfc).
    library: str | None = None
    # The primitives its authentication runs (their costs add up to its floor), then any
    # shown beside them for reference only (the bare signature check). Names are the rows
    # of the primitives experiment.
    primitives: tuple[str, ...] = ()
    reference_primitives: tuple[str, ...] = ()

    @property
    def needs_redis(self) -> bool:
        return self.state == "redis" or self.denylist == "redis"

    @property
    def keeps_server_state(self) -> bool:
        """Per-user entries on the server side: sessions, or denylisted token ids."""
        return self.state in ("process", "redis") or self.denylist != "none"

    @property
    def secret_env(self) -> str | None:
        """The environment variable that hands its secret to a server."""
        return {"none": None, "cookie_key": ENV_COOKIE_KEY, "jwt_secret": ENV_JWT_KEY,
                "jwt_private_key": ENV_JWT_KEY_FILE}[self.secret]

    def facts(self) -> dict[str, Any]:
        """What a run folder records about the variant (manifest.json's `variants`)."""
        facts = asdict(self)
        del facts["implementation"]
        return facts


def _jwt(name: str, algorithm: str, secret: Secret, library: str = "PyJWT") -> Variant:
    reference = "HMAC-SHA256 alone" if algorithm == "HS256" \
        else f"{algorithm} signature verify alone"
    return Variant(name, "bearer", "client", False, "servers.variants.tokens:JwtVariant",
                   secret=secret, algorithm=algorithm, library=library,
                   primitives=(f"{library} decode {algorithm}",),
                   reference_primitives=(reference,))


# In the order reports list them.
REGISTRY: tuple[Variant, ...] = (
    Variant("none", "none", "none", False, "servers.variants.none:NoAuth"),
    Variant("session-memory", "cookie", "process", True,
            "servers.variants.sessions:SessionMemory",
            primitives=("dict lookup (10^4 sessions)",)),
    Variant("session-redis", "cookie", "redis", True, "servers.variants.sessions:SessionRedis",
            primitives=("redis-py GET round trip",)),
    Variant("session-cookie", "cookie", "client", False,
            "servers.variants.sessions:SessionCookie", secret="cookie_key",
            primitives=("Fernet decrypt",)),
    _jwt("jwt-hs256", "HS256", "jwt_secret"),
    _jwt("jwt-rs256", "RS256", "jwt_private_key"),
    _jwt("jwt-es256", "ES256", "jwt_private_key"),
    _jwt("jwt-eddsa", "EdDSA", "jwt_private_key"),
    Variant("jwt-hs256-revocable", "bearer", "client", True,
            "servers.variants.tokens:RevocableJwt", secret="jwt_secret", algorithm="HS256",
            denylist="redis", library="PyJWT",
            primitives=("PyJWT decode HS256", "redis-py EXISTS round trip")),
    # The same tokens verified by another library than PyJWT: a compiled one (Rust), and
    # the maintained pure-Python alternative (the methodology says why these).
    _jwt("jwt-hs256-oxyjwt", "HS256", "jwt_secret", "oxyjwt"),
    _jwt("jwt-eddsa-oxyjwt", "EdDSA", "jwt_private_key", "oxyjwt"),
    _jwt("jwt-hs256-joserfc", "HS256", "jwt_secret", "joserfc"),
)
BY_NAME: dict[str, Variant] = {v.name: v for v in REGISTRY}
NAMES: tuple[str, ...] = tuple(BY_NAME)


@dataclass(frozen=True)
class Pair:
    """A session-versus-token comparison, declared before anything is measured (the verdict
    never picks the best of each side afterwards); docs/methodology.md gives the reasons."""

    session: str
    token: str
    reason: str

    @property
    def name(self) -> str:
        return f"{self.session}__{self.token}"

    def facts(self) -> dict[str, str]:
        return asdict(self)


# The comparisons every run declares (its manifest's `pairs`), in the order reports list them.
DECLARED_PAIRS: tuple[Pair, ...] = (
    Pair("session-memory", "jwt-hs256",
         "the claim's own picture: sessions in server memory against the cheapest stateless "
         "token"),
    Pair("session-redis", "jwt-hs256-revocable",
         "one Redis round trip per request each: a shared session store against a token "
         "that can be revoked, which is what logout needs"),
    Pair("session-cookie", "jwt-hs256",
         "both keep the session on the client under a symmetric key: an encrypted cookie "
         "against a signed token"),
    Pair("session-redis", "jwt-hs256",
         "the choice a deployment of several server processes faces: sessions in a store "
         "every server reaches, against a token any server verifies alone"),
    # The same pairs with a compiled verifier in place of PyJWT: is the answer about
    # tokens, or about one library under CPython?
    Pair("session-memory", "jwt-hs256-oxyjwt",
         "the claim's own pair, the token verified by a compiled library (Rust) instead of "
         "PyJWT"),
    Pair("session-cookie", "jwt-hs256-oxyjwt",
         "the encrypted cookie against a signed token verified by a compiled library"),
    Pair("session-redis", "jwt-hs256-oxyjwt",
         "the deployment's pair, the token verified by a compiled library"),
)


def variant(name: str) -> Variant:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(NAMES)}") from None


def build_variant(settings: Settings, redis: aioredis.Redis | None) -> AuthVariant:
    """The variant named by settings.auth; those that need Redis get the injected client."""
    spec = variant(settings.auth)
    if spec.needs_redis and redis is None:
        raise ValueError(f"variant {spec.name} needs Redis")
    module, _, cls = spec.implementation.partition(":")
    implementation = getattr(importlib.import_module(module), cls)
    return implementation(settings, redis)  # type: ignore[no-any-return]
