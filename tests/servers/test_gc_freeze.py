"""The population experiment's remedy: --gc-freeze on session-memory."""

from __future__ import annotations

import gc

from tests.conftest import ADMIN_TOKEN, MakeClient


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
