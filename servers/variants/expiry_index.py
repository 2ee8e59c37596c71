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
# hex characters like real ones (SeedIds: a random salt and a counter). It touches keys it
# is not given in KEYS, which is fine outside Redis Cluster.
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
# Each batch blocks Redis for a few ms, other clients served between batches. Not more:
# as the keyspace passes 2^22 and 2^23 keys, Redis grows its hash tables (the keys', their
# expiry times', the index's) and rehashes them as it writes, and a batch of 5,000 then
# took up to 249 ms, past the servers' 250 ms Redis budget (seeding 10^7 answered 503);
# batches of 1,000 took at most 55 ms there, 10^7 keys in 78 s (measured here).
SEED_BATCH = 1_000


class SeedIds:
    """The ids of seeded entries: one random salt per store, then a counter in 16 hex digits.

    32 hex characters like real ids, so they pass the same checks; derivable, so the
    runner can send requests with every seeded session (millions of them) knowing only the
    salt and the count. Benchmark data created through the admin route only: 64 random bits
    (the salt) rather than the 128 of a real session id.
    """

    def __init__(self) -> None:
        self.salt = secrets.token_hex(8)
        self.count = 0

    def take(self, n: int) -> int:
        """Reserve the next n ids; the first one's number."""
        first = self.count + 1
        self.count += n
        return first

    def id(self, number: int) -> str:
        return f"{self.salt}{number:016x}"

    def described(self) -> dict[str, str | int]:
        """What /admin/seed tells its caller: every id from first to last is salt + the
        number in 16 hex digits."""
        return {"salt": self.salt, "first": 1, "last": self.count}


class ExpiryIndex:
    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self._redis = redis
        self.key = key
        self._seed = redis.register_script(SEED_SCRIPT)
        self.seeded = SeedIds()

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
        """Create `count` keys `prefix<id>` (and their index entries) expiring at expire_at,
        their ids the next of `seeded`.

        The value is value_head + value_tail, with the entry's number between them when
        `numbered` (so seeded sessions name distinct users, like real ones).
        """
        start = self.seeded.take(count)
        for first in range(start, start + count, SEED_BATCH):
            n = min(SEED_BATCH, start + count - first)
            await self._seed(keys=[self.key], args=[prefix, first, n, self.seeded.salt,
                                                    value_head, "1" if numbered else "0",
                                                    value_tail, expire_at])
