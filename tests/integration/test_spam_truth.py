"""The spam model through PostgreSQL against the simulator's truth, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import numpy as np

from scoring.registry import run_model
from scoring.spam.core import precision_recall
from simulator import render
from simulator.world import World

FAST = {"per_class": 400, "max_iter": 200}
KINDS = {1: "link", 2: "fake", 3: "churn"}


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def _load_world(db: asyncpg.Connection, world: World) -> None:
    """Land the world's live users, links and follow events as the crawler would."""
    now = datetime.now(UTC)
    ids = world.live_ids().tolist()
    users, links = [], []
    for uid in ids:
        u = render.full_user(world, uid, world.end_us)
        users.append(
            (
                uid, u["description"], _ts(u["created_at"]), u["followers_count"],
                u["followings_count"], u["track_count"], u["likes_count"], u["reposts_count"],
                u["playlist_count"], u["comments_count"],
                u["creator_subscription"]["product"]["id"], now,
            )
        )  # fmt: skip
        for w in render.web_profiles(world, uid):
            links.append((uid, w["url"], w["network"], w["title"], now))
    await db.copy_records_to_table(
        "users",
        columns=[
            "id", "description", "created_at", "followers_count", "followings_count",
            "track_count", "likes_count", "reposts_count", "playlist_count", "comments_count",
            "plan", "fetched_at",
        ],
        records=users,
    )  # fmt: skip
    await db.copy_records_to_table(
        "web_profiles", columns=["user_id", "url", "network", "title", "fetched_at"], records=links
    )
    f = world.follows
    live = np.zeros(world.core + 1, dtype=bool)
    live[ids] = True
    keep = live[f.src] & live[f.dst]
    await db.copy_records_to_table(
        "follows",
        columns=["follower_id", "followee_id", "event_time", "time_source", "fetched_at"],
        records=(
            (int(a), int(b), datetime.fromtimestamp(t / 1e6, UTC), "exact", now)
            for a, b, t in zip(f.src[keep], f.dst[keep], f.t_us[keep], strict=True)
        ),
    )


async def test_spam_run_through_the_database_meets_the_truth(db: asyncpg.Connection) -> None:
    world = World.generate(seed=4, users=3000)
    await _load_world(db, world)
    run_id = await run_model(db, "spam", FAST)
    run = await db.fetchrow("SELECT * FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done", run["error"]
    metrics = json.loads(run["metrics"])
    assert metrics["elbow"]["k"] in {int(k) for k in metrics["elbow"]["inertias"]}
    assert 0.8 <= metrics["mlp"]["held_out_accuracy"] <= 1.0
    assert metrics["feature_selection"]["selected"]

    rows = await db.fetch("SELECT * FROM spam_scores WHERE run_id = $1 ORDER BY user_id", run_id)
    uid = np.array([r["user_id"] for r in rows])
    flagged = np.array([r["is_spam"] for r in rows])
    truth = world.spam_kind[uid - 1]
    precision, recall = precision_recall(flagged, truth > 0)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    for r, t in zip(rows, truth.tolist(), strict=True):
        assert (r["label"] == "spam") == r["is_spam"]
        assert 0.0 <= r["probability"] <= 1.0
        if r["is_spam"] and t:
            assert r["kind"] == KINDS[t]
        if not r["is_spam"]:
            assert r["kind"] is None and not r["label"].startswith("spam")


async def test_no_users_is_recorded(db: asyncpg.Connection) -> None:
    run_id = await run_model(db, "spam", FAST)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed" and "no users" in run["error"]


async def test_missing_counts_are_recorded_not_raised(db: asyncpg.Connection) -> None:
    # Users seen only in lists (no following/track counts) cannot be scored.
    await db.executemany(
        "INSERT INTO users (id, followers_count, fetched_at) VALUES ($1, $2, now())",
        [(i, i) for i in range(1, 40)],
    )
    run_id = await run_model(db, "spam", FAST)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed"
    assert "no user can be scored (39 users: missing" in run["error"]
    assert await db.fetchval("SELECT count(*) FROM spam_scores") == 0


async def test_too_few_scorable_users_is_recorded(db: asyncpg.Connection) -> None:
    await db.executemany(
        "INSERT INTO users (id, followers_count, followings_count, track_count, fetched_at)"
        " VALUES ($1, $2, $2, 0, now())",
        [(i, i) for i in range(1, 6)],
    )
    run_id = await run_model(db, "spam", FAST)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed" and "cannot fit the spam model" in run["error"]
    assert await db.fetchval("SELECT count(*) FROM spam_scores") == 0
