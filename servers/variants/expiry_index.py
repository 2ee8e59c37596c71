"""An exact count of live Redis keys: a sorted set of key id -> expiry time.

DBSIZE counts unrelated and expired-but-not-yet-reclaimed keys, and SCAN is O(N), so
both variants that keep state in Redis maintain this index beside their keys. Its memory
is part of what they cost and is measured with them.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline


class ExpiryIndex:
    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self._redis = redis
        self.key = key

    def add(self, pipe: Pipeline, ids_to_expiry: dict[str, float]) -> None:
        pipe.zadd(self.key, ids_to_expiry)

    def remove(self, pipe: Pipeline, member: str) -> None:
        pipe.zrem(self.key, member)

    async def count(self) -> int:
        """Drop expired members, then count what is left, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zremrangebyscore(self.key, "-inf", time.time())
        pipe.zcard(self.key)
        _, live = await pipe.execute()
        return int(live)
