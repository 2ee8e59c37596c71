"""Server settings: one frozen dataclass, built from the command line and environment."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from servers.variants.registry import (
    ENV_ADMIN_TOKEN,
    ENV_COOKIE_KEY,
    ENV_JWT_KEY,
    ENV_JWT_KEY_FILE,
    NAMES,
    variant,
)


@dataclass(frozen=True)
class Settings:
    auth: str
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = "redis://127.0.0.1:6379/0"
    users: int = 10_000
    session_ttl: int = 1800
    token_ttl: int = 900
    cookie_secure: bool = False
    admin_token: str | None = None
    # PBKDF2-SHA256 iterations for the user table: cheap by default so logins do not
    # drown the comparison; every variant pays the same.
    password_iterations: int = 100
    # PEM private key (asymmetric JWT) or secret (HS256); generated at start-up when None.
    jwt_key: bytes | None = None
    # Fernet key for session-cookie; generated at start-up when None.
    cookie_key: str | None = None
    # Per-command Redis budget: the 503 must come well within the contract's 1 s (docs/api.md).
    redis_timeout: float = 0.25
    # The population's remedy: gc.freeze() after each chunk seeded and every 20,000 logins,
    # so the collector's passes never walk the store (see app.Freezer).
    gc_freeze: bool = False

    def __post_init__(self) -> None:
        variant(self.auth)  # a ValueError naming the variants for any other name
        for name in ("users", "session_ttl", "token_ttl", "password_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be between 0 and 65535")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("--admin-token must be at least 16 characters")

    @property
    def needs_redis(self) -> bool:
        return variant(self.auth).needs_redis


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m servers",
        description="Run one authscale server variant (see docs/api.md).",
    )
    parser.add_argument("--auth", required=True, choices=NAMES, metavar="VARIANT",
                        help="authentication variant: " + ", ".join(NAMES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--session-ttl", type=int, default=1800, help="seconds")
    parser.add_argument("--token-ttl", type=int, default=900, help="seconds")
    parser.add_argument("--cookie-secure", action="store_true",
                        help="mark session cookies Secure (needs HTTPS in front)")
    # `--admin-token=VALUE` is the safe spelling for a token that starts with '-'.
    parser.add_argument("--admin-token", default=None,
                        help=f"enables POST /admin/seed; or set {ENV_ADMIN_TOKEN}")
    parser.add_argument("--password-iterations", type=int, default=100,
                        help="PBKDF2 iterations of the user table (login cost)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="as POST /admin/seed creates sessions, chunk by chunk, and "
                             "after every 20,000 logins, move every object the garbage "
                             "collector tracks (the sessions) out of its reach (gc.freeze)")
    parser.add_argument("--jwt-key-file", default=None,
                        help=f"PEM private key or HS256 secret file; or {ENV_JWT_KEY}"
                             f"/{ENV_JWT_KEY_FILE}")
    return parser


def settings_from_args(argv: list[str] | None = None,
                       environ: dict[str, str] | None = None) -> Settings:
    """Parse the command line (and secrets from the environment) into Settings.

    Raises SystemExit(2) via argparse for unusable flags, ValueError for bad values.
    """
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    key_file = args.jwt_key_file or env.get(ENV_JWT_KEY_FILE)
    jwt_key: bytes | None = None
    if key_file:
        try:
            with open(key_file, "rb") as fh:
                jwt_key = fh.read().strip()
        except OSError as exc:
            raise ValueError(f"cannot read JWT key file {key_file!r}: {exc.strerror}") from None
    elif env.get(ENV_JWT_KEY):
        jwt_key = env[ENV_JWT_KEY].encode()
    return Settings(
        auth=args.auth,
        host=args.host,
        port=args.port,
        redis_url=args.redis_url,
        users=args.users,
        session_ttl=args.session_ttl,
        token_ttl=args.token_ttl,
        cookie_secure=args.cookie_secure,
        admin_token=args.admin_token or env.get(ENV_ADMIN_TOKEN) or None,
        password_iterations=args.password_iterations,
        jwt_key=jwt_key,
        cookie_key=env.get(ENV_COOKIE_KEY) or None,
        gc_freeze=args.gc_freeze,
    )
