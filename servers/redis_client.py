"""The servers' Redis client: sub-second timeouts, no retries, so a lost Redis is a fast 503."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# Enough connections for hundreds of in-flight requests; a request that cannot get one
# within the timeout fails (503) instead of queueing behind a hung Redis.
MAX_CONNECTIONS = 128


def create_redis(url: str, timeout: float) -> aioredis.Redis:
    """A client that fails within `timeout` per command instead of redis-py's 5 s and retries."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis.from_pool(pool)  # the client owns its pool: aclose() closes both
