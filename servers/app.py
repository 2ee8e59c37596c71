"""The aiohttp application every variant shares: routes, handlers, middleware, metrics."""

from __future__ import annotations

import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from redis import RedisError

from servers.jsonutil import dumps, error_response, json_response
from servers.metrics import Metrics
from servers.redis_client import create_redis
from servers.settings import Settings
from servers.users import UserTable
from servers.variants import registry
from servers.variants.base import AuthVariant, Identity, StoreUnavailable

log = logging.getLogger("authscale.server")

SETTINGS = web.AppKey("settings", Settings)
VARIANT = web.AppKey("variant", AuthVariant)
METRICS = web.AppKey("metrics", Metrics)
USERS = web.AppKey("users", UserTable)

MAX_BODY_BYTES = 64 * 1024
MAX_SEED = 10_000_000

# The protected resource: ~1 KB of JSON, encoded once, identical on every variant.
ITEMS_BODY: bytes = dumps([
    {"id": i, "name": f"item-{i:03d}", "price_cents": 100 + 7 * i, "in_stock": i % 3 != 0,
     "tags": ["authscale", "bench"]}
    for i in range(1, 12)
]).encode()

# The remedy (--gc-freeze) freezes after this many sessions made by logins.
FREEZE_EVERY = 20_000


class Freezer:
    """The population's remedy (--gc-freeze) as a service would run it: after every
    `every` logins, what the garbage collector tracks (the sessions made since the last
    freeze above all) leaves its generations (gc.freeze), so no collection walks a store
    that logins grow. Seeding freezes chunk by chunk the same way (admin_seed). Freed by
    reference counting as before; cyclic garbage alive at a freeze is never collected."""

    def __init__(self, every: int = FREEZE_EVERY) -> None:
        self.every = every
        self.since = 0

    def logged_in(self) -> None:
        self.since += 1
        if self.since >= self.every:
            gc.freeze()
            self.since = 0


FREEZER = web.AppKey("freezer", Freezer)

ProtectedHandler = Callable[[web.Request, Identity], Awaitable[web.StreamResponse]]


def protected(handler: ProtectedHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate, time it (Server-Timing and the histogram), then call the handler."""

    async def authenticated(request: web.Request) -> web.StreamResponse:
        app = request.app
        variant = app[VARIANT]
        start = time.perf_counter_ns()
        try:
            identity = await variant.authenticate(request)
            outcome = "ok" if identity is not None else "unauthorized"
        except StoreUnavailable:
            identity, outcome = None, "unavailable"
        elapsed_ns = time.perf_counter_ns() - start
        app[METRICS].auth[outcome].observe(elapsed_ns / 1e9)
        if identity is not None:
            response = await handler(request, identity)
        elif outcome == "unavailable":
            response = error_response(503, "session_store_unavailable")
        else:
            response = error_response(401, "unauthorized", headers=variant.challenge)
        response.headers["Server-Timing"] = f"auth;dur={elapsed_ns / 1e6:.4f}"
        return response

    return authenticated


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "variant": request.app[SETTINGS].auth})


async def login(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "bad_request", "body must be a JSON object")
    if not isinstance(body, dict):
        return error_response(400, "bad_request", "body must be a JSON object")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return error_response(400, "bad_request",
                              "fields 'username' and 'password' must be strings")
    if not request.app[USERS].check(username, password):
        return error_response(401, "invalid_credentials")
    response = await request.app[VARIANT].issue(request, username)
    freezer = request.app.get(FREEZER)
    if freezer is not None and response.status == 200:
        freezer.logged_in()
    return response


@protected
async def me(request: web.Request, identity: Identity) -> web.Response:
    return json_response({"user": identity.user, "variant": request.app[SETTINGS].auth})


@protected
async def items(request: web.Request, identity: Identity) -> web.Response:
    return web.Response(body=ITEMS_BODY, content_type="application/json")


@protected
async def logout(request: web.Request, identity: Identity) -> web.Response:
    response = web.Response(status=204)
    await request.app[VARIANT].revoke(request, identity, response)
    return response


async def metrics(request: web.Request) -> web.Response:
    app_metrics = request.app[METRICS]
    if app_metrics.live_sessions is not None:
        try:
            app_metrics.live_sessions.set(await request.app[VARIANT].live_sessions() or 0)
        except RedisError:
            log.warning("live session count unavailable: Redis did not answer")
    return web.Response(body=app_metrics.exposition(),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


async def admin_seed(request: web.Request) -> web.Response:
    expected = request.app[SETTINGS].admin_token
    if expected is None:
        return error_response(404, "not_found")
    given = request.headers.get("X-Admin-Token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return error_response(401, "unauthorized")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "bad_request", "body must be a JSON object")
    count = body.get("count") if isinstance(body, dict) else None
    if type(count) is not int or not 0 <= count <= MAX_SEED:
        return error_response(400, "bad_request",
                              f"'count' must be an integer from 0 to {MAX_SEED}")
    variant = request.app[VARIANT]
    # The remedy the population experiment measures beside the plain store (Freezer):
    # what is alive after each chunk seeded (the sessions above all) leaves the
    # collector's generations, so no collection, during the seeding or after, walks
    # millions of session dicts.
    freeze = request.app[SETTINGS].gc_freeze
    pauses = request.app[METRICS].gc_pauses
    pauses.seeding += 1
    try:
        created = await variant.seed(count, gc.freeze if freeze else None)
        if freeze:
            gc.freeze()
    finally:
        pauses.seeding -= 1
    live = await variant.live_sessions()
    answer: dict[str, Any] = {"created": created, "live_sessions": live or 0}
    ids = variant.seeded_ids()
    if ids is not None:
        answer["seeded_ids"] = ids
    return json_response(answer)


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    route = request.match_info.route.resource
    # Unmatched paths share one label so random URLs cannot explode the series count.
    name = route.canonical if route is not None else "unmatched"
    request.app[METRICS].count_request(name, response.status)
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error a JSON body: 4xx as such, a lost store 503, anything else 500, no trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = exc.reason.lower().replace(" ", "_") if exc.reason else "error"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
        return error_response(exc.status, slug, headers=headers)
    except (StoreUnavailable, RedisError):
        return error_response(503, "session_store_unavailable")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error")


def create_app(settings: Settings, redis: aioredis.Redis | None = None) -> web.Application:
    """The app for settings.auth; a Redis client is made from settings unless injected."""
    if settings.needs_redis and redis is None:
        redis = create_redis(settings.redis_url, settings.redis_timeout)
    variant = registry.build_variant(settings, redis if settings.needs_redis else None)
    # count_requests outermost so it sees the final status json_errors gives.
    app = web.Application(middlewares=[count_requests, json_errors],
                          client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[VARIANT] = variant
    app[METRICS] = Metrics(settings.auth, registry.variant(settings.auth).keeps_server_state)
    app[USERS] = UserTable(settings.users, settings.password_iterations)
    if settings.gc_freeze:
        app[FREEZER] = Freezer()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/login", login)
    app.router.add_get("/me", me)
    app.router.add_get("/items", items)
    app.router.add_post("/logout", logout)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/seed", admin_seed)
    app.router.add_routes(variant.routes())
    app.cleanup_ctx.append(variant.lifespan)
    app.cleanup_ctx.append(_timing_gc(app[METRICS]))
    if redis is not None and settings.needs_redis:
        app.cleanup_ctx.append(_closing(redis))
    return app


def _timing_gc(metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    async def time_gc(app: web.Application) -> AsyncIterator[None]:
        metrics.gc_pauses.install()
        yield
        metrics.gc_pauses.remove()

    return time_gc


def _closing(redis: aioredis.Redis) -> Callable[[web.Application], AsyncIterator[None]]:
    async def close_redis(app: web.Application) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    return close_redis
