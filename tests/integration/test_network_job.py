"""The network model end to end on PostgreSQL: rows equal networkx, bad input recorded."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import networkx as nx
import pytest

from scoring.network.core import MOTIF_NAMES
from scoring.registry import run_model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = [
    (1, 2), (2, 1), (2, 3), (3, 1), (1, 3), (4, 1), (5, 1), (5, 4), (6, 5),
    (7, 1), (7, 1), (7, 1), (7, 2), (7, 2), (3, 2), (8, 9),
]  # fmt: skip


async def _load(
    db: asyncpg.Connection, events: list[tuple[int, int]], users: dict[int, int]
) -> None:
    await db.executemany(
        "INSERT INTO users (id, track_count, followers_count, fetched_at)"
        " VALUES ($1, $2, $3, now())",
        [(u, tracks, 0) for u, tracks in users.items()],
    )
    await db.executemany(
        "INSERT INTO follows (follower_id, followee_id, event_time, time_source, fetched_at)"
        " VALUES ($1, $2, $3, 'exact', now())",
        [(a, b, T0 + timedelta(seconds=i)) for i, (a, b) in enumerate(events)],
    )


def _close(ours: float | None, expected: float) -> bool:
    if ours is None:
        return math.isnan(expected)
    return math.isclose(ours, expected, rel_tol=1e-9, abs_tol=1e-12)


async def test_network_run_writes_networkx_equal_rows(db: asyncpg.Connection) -> None:
    await _load(db, EVENTS, {1: 3, 2: 1, 3: 0, 9: 2, 10: 5})
    run_id = await run_model(
        db, "network", {"scope": "both", "artists": [1, 10], "randomizations": 4}
    )
    run = await db.fetchrow("SELECT state, error, metrics FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done", run["error"]
    metrics = json.loads(run["metrics"])
    assert metrics["follow_events"] == len(EVENTS) and metrics["repeated_pairs"] == 2
    assert metrics["egos_skipped"] == {"10": "no follow in the crawled graph"}

    g = nx.DiGraph(EVENTS)
    row = await db.fetchrow(
        "SELECT * FROM network_stats WHERE run_id = $1 AND scope = 'global'", run_id
    )
    assert (row["nodes"], row["edges"]) == (g.number_of_nodes(), g.number_of_edges())
    assert _close(row["clustering"], nx.transitivity(g.to_undirected()))
    assert _close(row["reciprocity"], nx.reciprocity(g))
    assert _close(
        row["assortativity_out_in"], nx.degree_assortativity_coefficient(g, x="out", y="in")
    )
    census = nx.triadic_census(g)
    assert row["motif_counts"] == [census[k] for k in MOTIF_NAMES]
    assert len(row["motif_z"]) == 13

    ego = await db.fetchrow(
        "SELECT * FROM network_stats WHERE run_id = $1 AND scope = 'ego:1'", run_id
    )
    sub = g.subgraph(nx.ego_graph(g, 1, radius=1, undirected=True).nodes)
    assert ego["artist_id"] == 1 and ego["nodes"] == sub.number_of_nodes()
    assert ego["edges"] == sub.number_of_edges()

    users = {
        r["user_id"]: r
        for r in await db.fetch("SELECT * FROM user_graph_stats WHERE run_id = $1", run_id)
    }
    pr = nx.pagerank(g, tol=1e-12, max_iter=10_000)
    assert set(users) == set(g.nodes)
    for uid, r in users.items():
        assert r["pagerank"] == pytest.approx(pr[uid], abs=1e-8)
        assert (r["in_degree"], r["out_degree"]) == (g.in_degree(uid), g.out_degree(uid))
    assert (users[7]["max_follow_multiplicity"], users[7]["repeated_follows"]) == (3, 3)


async def test_empty_graph_is_recorded_not_raised(db: asyncpg.Connection) -> None:
    run_id = await run_model(db, "network", {})
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed" and "empty" in run["error"]
    assert await db.fetchval("SELECT count(*) FROM network_stats") == 0
    assert await db.fetchval("SELECT count(*) FROM user_graph_stats") == 0


async def test_single_artist_without_followers_is_recorded(db: asyncpg.Connection) -> None:
    await _load(db, [(2, 3)], {1: 4, 2: 0, 3: 0})
    run_id = await run_model(db, "network", {"scope": "ego", "artists": [1]})
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed" and "1: no follow" in run["error"]
    assert await db.fetchval("SELECT count(*) FROM network_stats") == 0


def test_cli_runs_network_and_reports_bad_params(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "SOUNDFLEET_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "soundfleet.cli", "score", "network"]
    empty = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 1 and "empty" in empty.stdout
    bad = subprocess.run(
        [*cmd, "--params", "hops=9"], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("soundfleet: error: params.hops")
    assert "Traceback" not in bad.stderr
