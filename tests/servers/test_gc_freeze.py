"""The population experiment's remedy: --gc-freeze on session-memory."""

from __future__ import annotations

import gc
import time

from prometheus_client.parser import text_string_to_metric_families

from servers.app import FREEZE_EVERY, FREEZER, METRICS
from tests.conftest import ADMIN_TOKEN, MakeClient, login


async def test_the_remedy_freezes_the_seeded_sessions(make_client: MakeClient) -> None:
    """After a seed, what the collector tracked (the seeded sessions' dicts above all) sits
    in its permanent generation, out of every collection's walk; without the flag, not."""
    plain = await make_client("session-memory")
    resp = await plain.post("/admin/seed", json={"count": 50_000},
                            headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 200 and gc.get_freeze_count() == 0
    frozen = await make_client("session-memory", gc_freeze=True)
    try:
        resp = await frozen.post("/admin/seed", json={"count": 50_000},
                                 headers={"X-Admin-Token": ADMIN_TOKEN})
        assert resp.status == 200
        # Each seeded session holds two dicts: 100,000 tracked containers at least.
        assert gc.get_freeze_count() >= 100_000
    finally:
        gc.unfreeze()  # this test process's own objects too: back as they were


class LongestFull:
    """The longest full (generation 2) collection while it is installed, timed by
    gc.callbacks as the servers time theirs."""

    def __init__(self) -> None:
        self.longest = self.count = 0.0
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.count += 1
            self.longest = max(self.longest, time.perf_counter() - self.started)

    def __enter__(self) -> LongestFull:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def test_the_remedy_freezes_as_it_seeds(make_client: MakeClient) -> None:
    """Frozen chunk by chunk, no full collection during a seed walks the sessions seeded
    so far: the longest (if any) is a fraction of the plain store's, whose full collections
    walk every session seeded before them (400,000 sessions, 800,000 tracked dicts)."""
    count = 400_000
    plain = await make_client("session-memory")
    with LongestFull() as plain_pauses:
        resp = await plain.post("/admin/seed", json={"count": count},
                                headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 200
    await plain.close()
    gc.collect()
    frozen = await make_client("session-memory", gc_freeze=True)
    try:
        with LongestFull() as frozen_pauses:
            resp = await frozen.post("/admin/seed", json={"count": count},
                                     headers={"X-Admin-Token": ADMIN_TOKEN})
        assert resp.status == 200
    finally:
        gc.unfreeze()
    # The plain store's full collections came as it grew; frozen chunk by chunk, the
    # collector's oldest generation never grew enough for one (seen: 6 against none).
    assert plain_pauses.count >= 1
    assert frozen_pauses.longest < 0.5 * plain_pauses.longest, (
        frozen_pauses.longest, plain_pauses.longest)


async def test_the_remedy_freezes_as_logins_grow_the_store(make_client: MakeClient) -> None:
    """In service the store grows by logins: the remedy freezes after every so many of
    them (FREEZE_EVERY), not only as it seeds; a failed login counts for nothing."""
    frozen = await make_client("session-memory", gc_freeze=True)
    freezer = frozen.server.app[FREEZER]
    assert freezer.every == FREEZE_EVERY
    freezer.every = 3  # 20,000 logins would take the test half a minute
    assert gc.get_freeze_count() == 0
    try:
        await login(frozen, "session-memory", 1)
        await login(frozen, "session-memory", 2)
        refused = await frozen.post("/login", json={"username": "user3", "password": "no"})
        assert refused.status == 401 and freezer.since == 2
        assert gc.get_freeze_count() == 0
        await login(frozen, "session-memory", 3)
        assert freezer.since == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    plain = await make_client("session-memory")
    assert plain.server.app.get(FREEZER) is None


def gauge(text: str, name: str) -> float:
    """The largest value of a gauge over its generations, from /metrics."""
    return max(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name)


async def test_seeding_pauses_are_kept_apart_from_the_service(make_client: MakeClient) -> None:
    """A collection during /admin/seed counts as the longest ever, not as the longest while
    serving; one outside it counts as both."""
    client = await make_client("session-memory")
    pauses = client.app[METRICS].gc_pauses
    pauses.seeding += 1
    try:
        gc.collect()  # a real full collection, inside a seed as far as the server knows
    finally:
        pauses.seeding -= 1
    text = await (await client.get("/metrics")).text()
    in_service = "authscale_gc_pause_longest_in_service_seconds"
    assert gauge(text, "authscale_gc_pause_longest_seconds") > 0
    before = gauge(text, in_service)
    assert before < gauge(text, "authscale_gc_pause_longest_seconds")
    for _ in range(3):
        gc.collect()  # while serving
    text = await (await client.get("/metrics")).text()
    assert gauge(text, in_service) > before
    resp = await client.post("/admin/seed", json={"count": 30_000},
                             headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 200 and pauses.seeding == 0
