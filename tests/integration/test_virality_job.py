"""The virality run end to end on PostgreSQL: rows per track/model/hour, bad input recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest

from scoring.registry import run_model
from scoring.virality import synthetic
from scoring.virality.job import SCORE_BOUND

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=30)


async def _load(db: asyncpg.Connection, world: synthetic.SyntheticWorld, young: int = 0) -> None:
    """Land a synthetic world as the crawler would: tracks, reposts, follows.

    Tracks are uploaded a day apart; the last ``young`` are uploaded an hour before the
    crawl so that their cascades are censored.
    """
    c = world.cascades
    uploads = [T0 + timedelta(hours=6 * i) for i in range(c.n)]
    for i in range(c.n - young, c.n):
        uploads[i] = NOW - timedelta(hours=1)
    await db.copy_records_to_table(
        "tracks",
        columns=["id", "user_id", "created_at", "fetched_at"],
        records=[
            (int(c.track_ids[i]) + 1, int(c.artists[i]) + 1, uploads[i], NOW) for i in range(c.n)
        ],
    )
    cidx = c.cascade_of_event
    records = []
    for e in range(c.times.size):
        at = uploads[cidx[e]] + timedelta(hours=float(c.times[e]))
        if at <= NOW:
            records.append((int(c.track_ids[cidx[e]]) + 1, int(c.users[e]) + 1, at, "exact", NOW))
    await db.copy_records_to_table(
        "reposts",
        columns=["track_id", "user_id", "event_time", "time_source", "fetched_at"],
        records=records,
    )
    g = world.graph
    await db.copy_records_to_table(
        "follows",
        columns=["follower_id", "followee_id", "event_time", "time_source", "fetched_at"],
        records=[
            (int(a) + 1, int(b) + 1, T0 - timedelta(days=1, seconds=i), "page", NOW)
            for i, (a, b) in enumerate(zip(g.follower, g.followee, strict=True))
        ],
    )


@pytest.fixture(scope="module")
def world() -> synthetic.SyntheticWorld:
    """A world with enough viral tracks at threshold 8 for five folds."""
    return synthetic.generate(
        600, n_users=1500, mean_follows=12.0, seed=4, horizon_hours=48.0, appeal_mu=-1.0
    )


PARAMS: dict[str, Any] = {
    "threshold": 8,
    "horizon_hours": 48.0,
    "step_hours": 2.0,
    "write_hours": [2, 12],
}


async def test_virality_run_scores_every_track_model_and_hour(
    db: asyncpg.Connection, world: synthetic.SyntheticWorld
) -> None:
    assert int((world.cascades.final_sizes() >= 8).sum()) >= 10
    await _load(db, world, young=20)
    run_id = await run_model(db, "virality", PARAMS)
    run = await db.fetchrow("SELECT state, error, metrics FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done", run["error"]
    metrics = json.loads(run["metrics"])
    assert metrics["censored"] >= 1 and any("censored" in p for p in metrics["problems"])
    assert metrics["pagerank_source"] == "computed from follows"
    assert "sansnet" in metrics["table"]
    for name in ("sansnet", "crowdcast", "nodecount", "szabo_huberman", "logistic", "seismic"):
        m = metrics["models"][name]
        assert not m.get("skipped"), (name, m)
        assert 0.0 <= m["detection"]["recall"] <= 1.0
    counts = await db.fetch(
        "SELECT model, hours_after_upload, count(*) AS n FROM virality_scores"
        " WHERE run_id = $1 GROUP BY 1, 2",
        run_id,
    )
    assert {(r["model"], r["hours_after_upload"]) for r in counts} == {
        (m, float(h)) for m in metrics["models"] for h in PARAMS["write_hours"]
    }
    assert all(r["n"] == world.cascades.n for r in counts)
    # SANSNET's predicted time of virality is only given for tracks it flags.
    bad = await db.fetchval(
        "SELECT count(*) FROM virality_scores WHERE run_id = $1 AND"
        " predicted_hours_to_viral IS NOT NULL AND NOT predicted_viral",
        run_id,
    )
    assert bad == 0
    # scores are finite, so SQL consumers can aggregate them
    top = await db.fetchval("SELECT max(abs(score)) FROM reporting.virality_scores")
    assert top <= SCORE_BOUND
    assert await db.fetchval("SELECT avg(score) FROM reporting.virality_scores") is not None


async def test_pagerank_cache_of_a_network_run_is_used(
    db: asyncpg.Connection, world: synthetic.SyntheticWorld
) -> None:
    await _load(db, world)
    net = await db.fetchval(
        "INSERT INTO scoring_runs (model, model_version, params, state)"
        " VALUES ('network', 't', '{}', 'done') RETURNING id"
    )
    users = np.unique(np.concatenate([world.graph.follower, world.graph.followee])) + 1
    await db.copy_records_to_table(
        "user_graph_stats",
        columns=["run_id", "user_id", "pagerank", "in_degree", "out_degree",
                 "max_follow_multiplicity", "repeated_follows"],
        records=[(net, int(u), 1.0 / users.size, 0, 0, 1, 0) for u in users],
    )  # fmt: skip
    run_id = await run_model(db, "virality", {**PARAMS, "models": ["crowdcast"]})
    run = await db.fetchrow("SELECT state, error, metrics FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done", run["error"]
    assert json.loads(run["metrics"])["pagerank_source"] == "user_graph_stats"


async def test_no_reposts_fails_the_run_with_the_reason(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO tracks (id, user_id, created_at, fetched_at) VALUES (1, 1, $1, $2)", T0, NOW
    )
    run_id = await run_model(db, "virality", PARAMS)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed" and "no repost events" in run["error"]


async def test_single_class_is_explained_not_crashed(
    db: asyncpg.Connection, world: synthetic.SyntheticWorld
) -> None:
    await _load(db, world)
    run_id = await run_model(db, "virality", {**PARAMS, "threshold": 10**6})
    run = await db.fetchrow("SELECT state, error, metrics FROM scoring_runs WHERE id = $1", run_id)
    # Szabo-Huberman regresses sizes and needs no classes; the classifiers are skipped.
    assert run["state"] == "done", run["error"]
    metrics = json.loads(run["metrics"])
    assert any("a single class" in p for p in metrics["problems"])
    sansnet = metrics["models"]["sansnet"]
    assert sansnet["skipped"] and "reached the threshold" in sansnet["problems"][0]
    assert not metrics["models"]["szabo_huberman"].get("skipped")


async def test_censored_only_is_explained_not_crashed(
    db: asyncpg.Connection, world: synthetic.SyntheticWorld
) -> None:
    await _load(db, world, young=world.cascades.n)
    run_id = await run_model(db, "virality", {**PARAMS, "threshold": 50})
    run = await db.fetchrow("SELECT state, error, metrics FROM scoring_runs WHERE id = $1", run_id)
    # Every track is an hour old and none reached 50 shares: no label is known at all.
    # SEISMIC needs no labels and still predicts; everything else is skipped, explained.
    assert run["state"] == "done", run["error"]
    metrics = json.loads(run["metrics"])
    assert metrics["censored"] == world.cascades.n
    assert any("censored" in p for p in metrics["problems"])
    assert metrics["models"]["sansnet"]["skipped"]
    assert "no fully observed" in metrics["models"]["szabo_huberman"]["problems"][0]
