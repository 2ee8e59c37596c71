"""Server-side and cookie sessions, all through aiohttp-session: only the storage differs.

session-memory: MemoryStorage below (aiohttp-session ships no server-side in-memory store).
session-redis: aiohttp-session's RedisStorage, fixed where it falls short (see RedisSessionStorage).
session-cookie: aiohttp-session's EncryptedCookieStorage (Fernet), the Rails/Flask style.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import redis.asyncio as aioredis
from aiohttp import hdrs, web
from aiohttp_session import AbstractStorage, Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from cryptography.fernet import Fernet
from redis import RedisError

from servers.jsonutil import dumps, json_response
from servers.settings import Settings
from servers.variants.base import AuthVariant, Identity, StoreUnavailable
from servers.variants.expiry_index import ExpiryIndex, SeedIds
from servers.variants.registry import SESSION_COOKIE


def new_session_id() -> str:
    """128 random bits from `secrets`, hex so it never needs quoting nor starts with '-'."""
    return secrets.token_hex(16)


# Seeding in process: sessions created per turn of the event loop (about 20 ms each here;
# requests are served between chunks).
SEED_CHUNK = 20_000
# What new_session_id() makes (and what seeding makes): anything else is refused unread.
SESSION_ID = re.compile(r"[0-9a-f]{32}")
# Our cookie's value in a Cookie header, bare or quoted (the Fernet value, which ends in
# '=', is sent back quoted).
COOKIE_VALUE = re.compile(rf'(?:^|;)\s*{SESSION_COOKIE}=(?:"([^"\\]*)"|([^";\s]*))')


class HeaderCookie:
    """load_cookie for every session storage: our one cookie straight from the header.

    aiohttp-session reads `request.cookies`, which parses every cookie of the header into a
    SimpleCookie: 4.5 us per request measured here, half of session-memory's whole
    authentication. One precompiled search does the job in 0.2 us. The first cookie of our
    name wins, and a value of the wrong shape is no session at all.
    """

    value_shape: re.Pattern[str] | None = None

    def load_cookie(self, request: web.Request) -> str | None:
        found = COOKIE_VALUE.search(request.headers.get(hdrs.COOKIE, ""))
        if found is None:
            return None
        value = found.group(1) if found.group(1) is not None else found.group(2)
        if self.value_shape is not None and not self.value_shape.fullmatch(value):
            return None
        return value or None


def cookie_options(settings: Settings) -> dict[str, Any]:
    # aiohttp-session leaves SameSite unset unless it is passed explicitly.
    return {
        "cookie_name": SESSION_COOKIE,
        "max_age": settings.session_ttl,
        "httponly": True,
        "samesite": "Lax",
        "secure": settings.cookie_secure or None,
        "path": "/",
        "encoder": dumps,
    }


def session_data(user: str, created: int) -> dict[str, Any]:
    """The stored shape aiohttp-session itself writes, so seeded and real sessions match."""
    return {"created": created, "session": {"user": user}}


class MemoryStorage(HeaderCookie, AbstractStorage):
    """Sessions in a dict inside the server process, expiring `max_age` after the last write.

    Ordered by last write: with one TTL for all, that is also expiry order, so expired
    sessions are removed from the front in O(1) each and the store cannot grow under churn.
    """

    value_shape = SESSION_ID

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._ttl: int = options["max_age"]
        self._sessions: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.seeded = SeedIds()

    def __len__(self) -> int:
        return len(self._sessions)

    def sweep(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        sessions = self._sessions
        while sessions:
            key = next(iter(sessions))
            if sessions[key][0] > now:
                break
            del sessions[key]

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        entry = self._sessions.get(key) if key else None
        if entry is None or entry[0] <= time.monotonic():
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(key, data=entry[1], new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse,
                           session: Session) -> None:
        key = session.identity
        if session.empty:
            if key is not None:
                self._sessions.pop(key, None)
            self.save_cookie(response, "", max_age=session.max_age)
            return
        if key is None:
            key = new_session_id()
        now = time.monotonic()
        self.sweep(now)
        self._sessions.pop(key, None)  # re-insert at the end: last write is newest
        data = self._get_session_data(session)
        # A copy: the Session object that handed us its mapping lives on after the request.
        self._sessions[key] = (now + self._ttl,
                               {"created": data["created"], "session": dict(data["session"])})
        self.save_cookie(response, key, max_age=session.max_age)

    def seed(self, count: int) -> Iterator[int]:
        """Create `count` sessions (ids from `seeded`), SEED_CHUNK at a time, yielding after
        each chunk so that the caller can let the event loop serve requests in between."""
        first = self.seeded.take(count)
        for start in range(first, first + count, SEED_CHUNK):
            stop = min(start + SEED_CHUNK, first + count)
            # Expiry per chunk: requests served between chunks write later, and the store
            # stays in expiry order.
            expires = time.monotonic() + self._ttl
            created = int(time.time())
            self._sessions.update(
                (self.seeded.id(i), (expires, session_data(f"seed{i}", created)))
                for i in range(start, stop))
            yield stop - start


class RedisSessionStorage(HeaderCookie, RedisStorage):
    """aiohttp-session's RedisStorage, plus what it lacks.

    - logout deletes the key (upstream writes `{}` back);
    - the key name and the session id come from us (128-bit `secrets` ids);
    - an expiry index so live sessions are counted exactly (see expiry_index);
    - a session id of the wrong shape is refused without a round trip (HeaderCookie).
    """

    value_shape = SESSION_ID

    def __init__(self, redis: aioredis.Redis, **options: Any) -> None:
        super().__init__(redis, key_factory=new_session_id, **options)
        self._ttl: int = options["max_age"]
        self.index = ExpiryIndex(redis, f"{SESSION_COOKIE}_live")

    def redis_key(self, session_id: str) -> str:
        return f"{self.cookie_name}_{session_id}"

    async def save_session(self, request: web.Request, response: web.StreamResponse,
                           session: Session) -> None:
        key = session.identity
        pipe = self._redis.pipeline(transaction=False)
        if session.empty:
            if key is not None:
                pipe.delete(self.redis_key(key))
                self.index.remove(pipe, key)
                await pipe.execute()
            self.save_cookie(response, "", max_age=session.max_age)
            return
        if key is None:
            key = self._key_factory()
        pipe.set(self.redis_key(key), dumps(self._get_session_data(session)), ex=self._ttl)
        self.index.add(pipe, {key: time.time() + self._ttl})
        await pipe.execute()
        self.save_cookie(response, key, max_age=session.max_age)

    async def seed(self, count: int) -> None:
        # The same JSON aiohttp-session writes for a real session, user "seed<i>".
        head = dumps(session_data("", int(time.time())))[:-3] + "seed"  # up to the number
        await self.index.seed(self.redis_key(""), count, int(time.time()) + self._ttl,
                              head, '"}}', numbered=True)


class FernetCookieStorage(HeaderCookie, EncryptedCookieStorage):
    """aiohttp-session's EncryptedCookieStorage, reading its cookie like the other two."""


class SessionVariant(AuthVariant):
    """What the three aiohttp-session variants share: everything but the storage.

    aiohttp-session's storages and Session, without its middleware: a session changes only
    at login and logout, which save it themselves, so no other request pays for a middleware
    layer that would find nothing to save (measured: 25 us of server CPU per request).
    """

    def __init__(self, storage: AbstractStorage) -> None:
        self.storage = storage

    async def issue(self, request: web.Request, user: str) -> web.Response:
        session = await self.storage.new_session()  # a fresh id at every login: no fixation
        session["user"] = user
        response = json_response({"user": user})
        await self.save(request, response, session)
        return response

    async def authenticate(self, request: web.Request) -> Identity | None:
        try:
            session = await self.storage.load_session(request)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        user = session.get("user")
        return Identity(user, session) if isinstance(user, str) else None

    async def revoke(self, request: web.Request, identity: Identity,
                     response: web.StreamResponse) -> None:
        # Server-side stores delete the emptied session; every store clears the cookie.
        identity.handle.invalidate()
        await self.save(request, response, identity.handle)

    async def save(self, request: web.Request, response: web.StreamResponse,
                   session: Session) -> None:
        try:
            await self.storage.save_session(request, response, session)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc


class SessionMemory(SessionVariant):
    name = "session-memory"
    SWEEP_INTERVAL = 1.0

    def __init__(self, settings: Settings, redis: aioredis.Redis | None = None) -> None:
        self.memory = MemoryStorage(**cookie_options(settings))
        super().__init__(self.memory)

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        # Expire idle sessions even when no login comes to trigger a sweep.
        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(self.SWEEP_INTERVAL)
                self.memory.sweep()

        task = asyncio.create_task(sweep_forever())
        yield
        task.cancel()

    async def live_sessions(self) -> int:
        self.memory.sweep()
        return len(self.memory)

    async def seed(self, count: int, chunk_done: Callable[[], None] | None = None) -> int:
        for _ in self.memory.seed(count):
            if chunk_done is not None:
                chunk_done()
            await asyncio.sleep(0)  # requests are served between chunks
        return count

    def seeded_ids(self) -> dict[str, Any]:
        return self.memory.seeded.described()


class SessionRedis(SessionVariant):
    name = "session-redis"

    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.redis_storage = RedisSessionStorage(redis, **cookie_options(settings))
        super().__init__(self.redis_storage)

    async def live_sessions(self) -> int:
        return await self.redis_storage.index.count()

    async def seed(self, count: int, chunk_done: Callable[[], None] | None = None) -> int:
        await self.redis_storage.seed(count)
        return count

    def seeded_ids(self) -> dict[str, Any]:
        return self.redis_storage.index.seeded.described()


class SessionCookie(SessionVariant):
    name = "session-cookie"

    def __init__(self, settings: Settings, redis: aioredis.Redis | None = None) -> None:
        # EncryptedCookieStorage wants the Fernet key as str (or 32 raw bytes).
        key = settings.cookie_key or Fernet.generate_key().decode()
        try:
            fernet = Fernet(key)
        except ValueError:
            raise ValueError("the session-cookie key must be a Fernet key "
                             "(32 url-safe base64-encoded bytes)") from None
        super().__init__(FernetCookieStorage(fernet, **cookie_options(settings)))
