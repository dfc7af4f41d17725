"""The spam model through PostgreSQL against the simulator's truth, and bad input."""

from __future__ import annotations

import json

import asyncpg
import numpy as np
import pytest

from benchmarks.spam import land_world
from scoring.registry import run_model
from scoring.spam import store
from scoring.spam.core import precision_recall
from simulator.regimes import REGIMES
from simulator.world import World

FAST = {"per_class": 400, "max_iter": 200}
KINDS = {1: "link", 2: "fake", 3: "churn"}


@pytest.mark.parametrize(
    ("regime", "follow_times", "min_precision", "min_recall"),
    [("easy", "exact", 0.95, 0.95), ("hard", "exact", 0.9, 0.8), ("hard", "page", 0.9, 0.8)],
)
async def test_spam_run_through_the_database_meets_the_truth(
    db: asyncpg.Connection,
    regime: str,
    follow_times: str,
    min_precision: float,
    min_recall: float,
) -> None:
    world = World.generate(seed=4, users=3000, regime=REGIMES[regime])
    await land_world(db, world, follow_times)
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
    assert precision >= min_precision and recall >= min_recall, (precision, recall)
    kinds_right = []
    for r, t in zip(rows, truth.tolist(), strict=True):
        assert (r["label"] == "spam") == r["is_spam"]
        assert 0.0 <= r["probability"] <= 1.0
        if r["is_spam"] and t:
            kinds_right.append(r["kind"] == KINDS[t])
        if not r["is_spam"]:
            assert r["kind"] is None and not r["label"].startswith("spam")
    assert np.mean(kinds_right) >= 0.9
    # users with no followers or no tracks are scored like anyone else
    no_followers = await db.fetchval(
        "SELECT count(*) FROM users u JOIN spam_scores s ON s.user_id = u.id"
        " WHERE s.run_id = $1 AND u.followers_count = 0",
        run_id,
    )
    assert no_followers > 0


async def test_no_users_is_recorded(db: asyncpg.Connection) -> None:
    run_id = await run_model(db, "spam", FAST)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed" and "no users" in run["error"]


async def test_unscorable_users_are_reported_with_their_reason(db: asyncpg.Connection) -> None:
    await db.executemany(
        "INSERT INTO users (id, followers_count, followings_count, track_count, fetched_at)"
        " VALUES ($1, $2, $3, $4, now())",
        [(i, i % 7, i % 5, None if i % 10 == 0 else 0) for i in range(1, 61)],
    )
    run_id = await run_model(db, "spam", FAST)
    run = await db.fetchrow("SELECT state, metrics FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done"
    metrics = json.loads(run["metrics"])
    assert metrics["users_unscorable"] == {"missing follower, following or track count": 6}
    assert metrics["unscorable_ids_sample"] == [10, 20, 30, 40, 50, 60]
    scored = await db.fetchval("SELECT count(*) FROM spam_scores WHERE run_id = $1", run_id)
    assert scored == 54


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


async def test_page_bound_follow_times_count_as_unknown(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO users (id, fetched_at) VALUES (1, now()), (2, now())")
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id, event_time, time_source, fetched_at)"
        " VALUES (1, 2, '2026-01-01T00:00:00Z', 'page', now()),"
        " (2, 1, '2026-01-02T00:00:00Z', 'exact', now()),"
        " (2, 1, '2026-01-03T00:00:00Z', 'item', now())"
    )
    inp = await store.read_input(db)
    order = np.lexsort((inp.follows.t_s, inp.follows.follower))
    times = inp.follows.t_s[order]
    assert np.isnan(times[0]) and times[1:].tolist() == [1767312000.0, 1767398400.0]
    assert inp.follows.follower[order].tolist() == [1, 2, 2]
