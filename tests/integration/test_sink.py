"""The bulk sink: idempotent, atomic, and faithful from payload to reporting view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from runtime import sink
from runtime.sink import write_rows
from schemas import api_v2, records
from schemas.errors import InputError
from schemas.tables import follows, tracks, users
from tests import fixtures

FETCHED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def _dump(conn: asyncpg.Connection, table: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2, 3")]


def _followings_rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    page = api_v2.parse(
        api_v2.UserPage, fixtures.load("TeamNewPipe__followings_8553751_limit200.json")
    )
    user_rows = [records.user_row(u, FETCHED) for u in page.collection]
    follow_rows = [
        records.follow_row(8553751, u.id, T0 + timedelta(minutes=i), "exact", FETCHED)
        for i, u in enumerate(page.collection)
    ]
    return user_rows, follow_rows


async def test_same_batch_twice_leaves_identical_tables(db: asyncpg.Connection) -> None:
    user_rows, follow_rows = _followings_rows()
    assert await write_rows(db, users, user_rows) == len(user_rows)
    assert await write_rows(db, follows, follow_rows) == len(follow_rows)
    before = (await _dump(db, "users"), await _dump(db, "follows"))
    assert await write_rows(db, users, user_rows) == 0
    assert await write_rows(db, follows, follow_rows) == 0
    assert (await _dump(db, "users"), await _dump(db, "follows")) == before


async def test_new_rows_go_straight_in_and_a_conflict_takes_the_upsert(
    db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink, "_staged_for", {})
    user_rows, _ = _followings_rows()
    half = len(user_rows) // 2
    async with db.transaction():  # inside a unit's transaction, as the crawler lands
        assert await write_rows(db, users, user_rows[:half]) == half
    assert sink._staged_for == {}  # copied straight in
    changed = dict(user_rows[0], followers_count=42)
    # One row the table holds, changed, among new ones: the whole batch is upserted.
    async with db.transaction():
        assert (
            await write_rows(db, users, [changed, *user_rows[half:]]) == len(user_rows) - half + 1
        )
    assert sink._staged_for["users"] == sink._STAGED_AFTER_CONFLICT
    assert await db.fetchval("SELECT count(*) FROM users") == len(user_rows)
    assert await db.fetchval("SELECT followers_count FROM users WHERE id=$1", changed["id"]) == 42


async def test_repeated_follow_events_are_data(db: asyncpg.Connection) -> None:
    rows = [records.follow_row(1, 2, T0 + timedelta(days=d), "exact", FETCHED) for d in range(5)]
    await write_rows(db, follows, rows + rows)
    assert await db.fetchval("SELECT count(*) FROM follows WHERE follower_id=1") == 5


async def test_upsert_takes_the_newer_version(db: asyncpg.Connection) -> None:
    user_rows, _ = _followings_rows()
    await write_rows(db, users, user_rows)
    changed = dict(user_rows[0], followers_count=123456789, fetched_at=FETCHED + timedelta(1))
    # The same key twice in one batch: the batch's last copy wins.
    assert await write_rows(db, users, [user_rows[0], changed]) == 1
    row = await db.fetchrow(
        "SELECT followers_count, fetched_at FROM users WHERE id=$1", changed["id"]
    )
    assert row["followers_count"] == 123456789


async def test_unit_lands_atomically(db: asyncpg.Connection) -> None:
    user_rows, follow_rows = _followings_rows()
    bad = [dict(follow_rows[0], follower_id="not a number")]
    with pytest.raises(InputError, match="follows"):
        async with db.transaction():
            await write_rows(db, users, user_rows)
            await write_rows(db, follows, bad)
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    # The connection stays usable and its staging tables empty.
    await write_rows(db, follows, follow_rows)
    assert await db.fetchval("SELECT count(*) FROM follows") == len(follow_rows)


async def test_unknown_column_names_it_and_writes_nothing(db: asyncpg.Connection) -> None:
    with pytest.raises(InputError, match=r"unknown column.*shoe_size"):
        await write_rows(db, users, [{"id": 1, "shoe_size": 44, "fetched_at": FETCHED}])
    with pytest.raises(InputError, match=r"lack key column.*id"):
        await write_rows(db, users, [{"username": "x", "fetched_at": FETCHED}])
    with pytest.raises(InputError, match="row 1"):
        await write_rows(db, users, [{"id": 1, "fetched_at": FETCHED}, {"id": 2}])
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_payload_to_reporting_view_round_trip(db: asyncpg.Connection) -> None:
    user = api_v2.parse(api_v2.User, fixtures.load("TeamNewPipe__user_542134.json"))
    tpage = api_v2.parse(
        api_v2.TrackPage, fixtures.load("TeamNewPipe__user_tracks_10494998_page1.json")
    )
    await write_rows(db, users, [records.user_row(user, FETCHED)])
    await write_rows(db, tracks, [records.track_row(t, FETCHED) for t in tpage.collection])

    row = await db.fetchrow("SELECT * FROM reporting.users WHERE user_id = $1", user.id)
    assert row["permalink"] == user.permalink
    assert row["followers_count"] == user.followers_count
    assert row["description"] == user.description
    assert row["created_at"] == user.created_at
    assert row["plan"] == "free" and row["verified"] is True

    got = {
        r["track_id"]: r for r in await db.fetch("SELECT * FROM reporting.tracks ORDER BY track_id")
    }
    assert set(got) == {t.id for t in tpage.collection}
    for t in tpage.collection:
        view = got[t.id]
        assert (view["title"], view["playback_count"], view["created_at"]) == (
            t.title,
            t.playback_count,
            t.created_at,
        )
        assert view["duration_ms"] == t.duration and view["user_id"] == t.user_id
