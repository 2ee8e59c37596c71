"""An exact count of live Redis keys: a sorted set of key id -> expiry time.

DBSIZE counts unrelated and expired-but-not-yet-reclaimed keys, and SCAN is O(N), so
both variants that keep state in Redis maintain this index beside their keys. Its memory
is part of what they cost and is measured with them.
"""

from __future__ import annotations

import secrets
import time

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

# Seeding through redis-py costs ~40 us per entry in Python (command packing), so a million
# takes most of a minute; this script creates the entries inside Redis instead. Ids are 32
# hex characters like real ones (a random salt and a counter: they are never presented, so
# they need not be unguessable). It touches keys it is not given in KEYS, which is fine
# outside Redis Cluster.
SEED_SCRIPT = """
local prefix, first, n, salt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local head, numbered, tail, expire_at = ARGV[5], ARGV[6] == '1', ARGV[7], tonumber(ARGV[8])
for i = first, first + n - 1 do
  local id = salt .. string.format('%016x', i)
  local value = numbered and (head .. i .. tail) or (head .. tail)
  redis.call('SET', prefix .. id, value, 'EXAT', expire_at)
  redis.call('ZADD', KEYS[1], expire_at, id)
end
return n
"""
# Each batch blocks Redis for ~10-20 ms: far inside the client's timeout, and other
# clients are served between batches.
SEED_BATCH = 5_000


class ExpiryIndex:
    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self._redis = redis
        self.key = key
        self._seed = redis.register_script(SEED_SCRIPT)

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

    async def seed(self, prefix: str, count: int, expire_at: int, value_head: str,
                   value_tail: str = "", numbered: bool = False) -> None:
        """Create `count` keys `prefix<id>` (and their index entries) expiring at expire_at.

        The value is value_head + value_tail, with the entry's number between them when
        `numbered` (so seeded sessions name distinct users, like real ones).
        """
        salt = secrets.token_hex(8)
        for first in range(1, count + 1, SEED_BATCH):
            n = min(SEED_BATCH, count - first + 1)
            await self._seed(keys=[self.key], args=[prefix, first, n, salt, value_head,
                                                    "1" if numbered else "0", value_tail,
                                                    expire_at])
