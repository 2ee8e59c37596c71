"""`python -m servers --auth VARIANT ...`: serve one variant until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvloop
from aiohttp import web
from redis import RedisError

from servers.app import create_app
from servers.redis_client import create_redis
from servers.settings import Settings, settings_from_args


class StartupError(Exception):
    """A reason the server cannot start, for one line on stderr."""


async def check_redis(settings: Settings) -> None:
    redis = create_redis(settings.redis_url, timeout=1.0)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        raise StartupError(f"{settings.auth} needs Redis, but {settings.redis_url} "
                           f"did not answer: {exc}") from None
    finally:
        await redis.aclose()


async def serve(settings: Settings) -> None:
    if settings.needs_redis:
        await check_redis(settings)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: "
                           f"{exc.strerror}") from None
    host, port = runner.addresses[0][:2]
    print(f"authscale server {settings.auth} listening on http://{host}:{port}",
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # aiohttp-session logs every undecryptable cookie: under attack that is a log flood.
    logging.getLogger("aiohttp_session").setLevel(logging.ERROR)
    try:
        settings = settings_from_args(argv)
        uvloop.run(serve(settings))
    except (ValueError, StartupError) as exc:
        print(f"python -m servers: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
