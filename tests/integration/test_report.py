"""``soundfleet report`` draws every figure from the tables, or says what is missing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import numpy as np

from runtime.sink import write_rows
from schemas import records
from schemas.tables import reposts
from soundfleet.report import PLOTS, write_report

T0 = datetime(2025, 5, 1, tzinfo=UTC)


async def _run(db: asyncpg.Connection, model: str) -> int:
    run: int = await db.fetchval(
        "INSERT INTO scoring_runs (model, model_version, params, state) "
        "VALUES ($1, 'test', '{}', 'done') RETURNING id",
        model,
    )
    return run


async def fill(db: asyncpg.Connection) -> None:
    """Rows for every figure: users, reposts, and a finished run of each model."""
    rng = np.random.default_rng(1)
    for uid in range(1, 201):
        await db.execute(
            "INSERT INTO users (id, followers_count, followings_count, track_count, likes_count,"
            " reposts_count, playlist_count, comments_count, fetched_at) "
            "VALUES ($1, $2, $3, $4, 1, 1, 0, 0, now())",
            uid,
            int(rng.pareto(1.1) * 10),
            int(rng.integers(0, 300)),
            int(uid % 3),
        )
    rows = [
        records.track_event_row(
            10 + t, u, T0 + timedelta(minutes=int(rng.integers(0, 3000))), "exact", T0
        )
        for t in range(3)
        for u in range(1, 60 + 40 * t)
    ]
    await write_rows(db, reposts, rows)
    net = await _run(db, "network")
    for scope in ("global", "ego:5", "ego:9"):
        await db.execute(
            "INSERT INTO network_stats (run_id, scope, nodes, edges, clustering, reciprocity, "
            "motif_counts, motif_z) VALUES ($1, $2, 100, 300, 0.1, 0.2, $3, $4)",
            net,
            scope,
            [int(x) for x in rng.integers(0, 1000, 13)],
            [float(x) for x in rng.normal(0, 3, 13)],
        )
    await db.execute(
        "UPDATE scoring_runs SET metrics = $2 WHERE id = $1",
        net,
        json.dumps({"multi_edge_dyads": {"asymmetric_single": 250, "asymmetric_repeated": 12}}),
    )
    await db.executemany(
        "INSERT INTO user_graph_stats (run_id, user_id, pagerank, in_degree, out_degree,"
        " max_follow_multiplicity, repeated_follows) VALUES ($1, $2, 0.01, 3, 40, $3, $4)",
        [(net, uid, 1 + uid % 4, uid % 4 * 10) for uid in range(1, 30)],
    )
    spam = await _run(db, "spam")
    for uid in range(1, 201):
        await db.execute(
            "INSERT INTO spam_scores (run_id, user_id, label, is_spam, probability, cluster) "
            "VALUES ($1, $2, $3, $4, 0.9, $5)",
            spam,
            uid,
            "spam" if uid % 10 == 0 else "fans",
            uid % 10 == 0,
            uid % 2,
        )
    vir = await _run(db, "virality")
    for track in range(20):
        for h in (1, 2, 4, 8):
            await db.execute(
                "INSERT INTO virality_scores VALUES ($1, $2, 'sansnet', $3, $4, $5, NULL)",
                vir,
                track,
                float(h),
                float(h * (track % 3)),
                track % 3 == 2,
            )
    rev = await _run(db, "revisit")
    shocks = [{"start": 3, "s0": 5000.0, "beta": 0.0001, "gamma": 0.3, "omega": 0.5}]
    await db.execute(
        'INSERT INTO revisit_fits (run_id, track_id, "window", n_points, n_shocks, shocks, '
        "rmse, audience_share, revisit_share, forecast) "
        "VALUES ($1, 10, 'hourly', 48, 1, $2, 1.0, 0.4, 0.6, $3)",
        rev,
        json.dumps(shocks),
        json.dumps({"observed": list(range(48))}),
    )


async def test_every_figure_drawn(db: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> None:
    await fill(db)
    figures = await asyncio.to_thread(write_report, db_dsn, tmp_path)
    assert [f.name for f in figures] == list(PLOTS)
    missing = {f.name: f.missing for f in figures if f.path is None}
    assert missing == {}
    index = (tmp_path / "index.html").read_text()
    for f in figures:
        assert f.path is not None and f.path.stat().st_size > 10_000
        assert f"src='{f.path.name}'" in index


async def test_empty_database_says_what_is_missing(db_dsn: str, tmp_path: Path) -> None:
    figures = await asyncio.to_thread(write_report, db_dsn, tmp_path)
    assert all(f.path is None and f.missing for f in figures)
    assert "no reposts crawled yet" in (tmp_path / "index.html").read_text()
