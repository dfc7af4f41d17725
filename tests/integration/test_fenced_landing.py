"""Fenced landing: a batch lands only under a live lease of the attempt that holds it.

A worker frozen past its lease (SIGSTOP, a long pause, a partition) wakes up holding
rows older than what the unit's next attempt may have landed since; its landing
transaction must be refused, and nothing of it written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from crawler.errors import StaleLease
from crawler.store import Batch, Fence, Store
from schemas import tables
from schemas.errors import LeaseLost
from tests.coordinator_util import Api, app_client, make_keys


@pytest.fixture
async def api(db_dsn: str) -> Any:
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn) as client:
        yield Api(client, keys)


def _batch(user_id: int, followers: int) -> Batch:
    batch = Batch()
    batch.add(
        tables.users,
        {
            "id": user_id,
            "permalink": f"user-{user_id}",
            "username": f"User {user_id}",
            "created_at": datetime(2020, 1, 1, tzinfo=UTC),
            "followers_count": followers,
            "fetched_at": datetime.now(UTC),
        },
    )
    return batch


async def test_a_stale_attempt_cannot_overwrite_a_fresher_one(
    api: Api, db_dsn: str, db: asyncpg.Connection
) -> None:
    await api.submit("user_tracks", {"user_ids": [1]})
    [first] = await api.lease("w-a", ["user_tracks"])
    store = await Store.open(db_dsn, size=2)
    try:
        old = Fence(first["unit_id"], first["token"])
        assert await store.land(_batch(7, followers=10), old) == 1
        # w-a freezes; its lease runs out and w-b takes the unit over.
        await db.execute("UPDATE work_units SET lease_expires_at = now() - interval '1 s'")
        with pytest.raises(StaleLease, match="no longer live"):
            await store.land(_batch(7, followers=11), old)
        [second] = await api.lease("w-b", ["user_tracks"])
        assert second["token"] == first["token"] + 1
        assert await store.land(_batch(7, followers=20), Fence(second["unit_id"], second["token"]))
        # w-a wakes with its older rows: refused although a lease is live (not its own).
        with pytest.raises(LeaseLost):
            await store.land(_batch(7, followers=12), old)
    finally:
        await store.close()
    assert await db.fetchval("SELECT followers_count FROM users WHERE id = 7") == 20
