"""The one interface every authentication variant implements."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


class StoreUnavailable(Exception):
    """The variant's credential store could not be consulted: answer 503, never accept."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a credential belongs to, plus what the variant needs to revoke it."""

    user: str
    handle: Any = None


class AuthVariant(abc.ABC):
    """Issue a credential, authenticate a request, revoke it, count live sessions."""

    name: str
    # Extra headers on a 401 (JWT variants send WWW-Authenticate: Bearer).
    challenge: dict[str, str] = {}  # noqa: RUF012 - never mutated, overridden per class

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """A cleanup context for the variant's own resources (sweepers, keys)."""
        yield

    @abc.abstractmethod
    async def issue(self, request: web.Request, user: str) -> web.Response:
        """The 200 answer to a successful login, carrying a fresh credential."""

    @abc.abstractmethod
    async def authenticate(self, request: web.Request) -> Identity | None:
        """The identity behind the request's credential, None when it is not valid.

        Raises StoreUnavailable when the store could not answer.
        """

    async def revoke(self, request: web.Request, identity: Identity,
                     response: web.StreamResponse) -> None:
        """Logout: forget the credential wherever the variant can. No-op by default."""
        return None

    async def live_sessions(self) -> int | None:
        """Live server-side sessions (or denylisted ids); None where no state is kept."""
        return None

    async def seed(self, count: int, chunk_done: Callable[[], None] | None = None) -> int:
        """Create `count` entries of server-side state for the population experiments;
        `chunk_done` is called after each chunk created in this process (the remedy freezes
        them there), not for state kept in Redis."""
        return 0

    def seeded_ids(self) -> dict[str, Any] | None:
        """How to derive every seeded session id (expiry_index.SeedIds), for variants whose
        seeded entries are sessions a client can present; None otherwise."""
        return None

    def routes(self) -> list[web.RouteDef]:
        """Extra routes (the JWKS of asymmetric JWT variants)."""
        return []
