"""The revisit scoring run on real PostgreSQL: snapshots in, ``revisit_fits`` rows out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np

from scoring.registry import run_model
from scoring.revisit.model import Shock, simulate

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _snapshots(track_id: int, hours: np.ndarray, counts: np.ndarray) -> list[tuple[object, ...]]:
    return [
        (track_id, T0 + timedelta(hours=float(h)), int(c))
        for h, c in zip(hours, counts, strict=True)
    ]


async def _insert(db: asyncpg.Connection, rows: list[tuple[object, ...]]) -> None:
    await db.copy_records_to_table(
        "track_stats", columns=["track_id", "observed_at", "playback_count"], records=rows
    )


async def test_fits_good_tracks_and_explains_bad_ones(db: asyncpg.Connection) -> None:
    shocks = [Shock(3, 3e4, 0.5 / 3e4, 0.08, 2.0), Shock(70, 1e4, 0.9 / 1e4, 0.15, 1.5)]
    daily, _ = simulate(shocks, 150)
    rng = np.random.default_rng(5)
    cum = np.concatenate([[0.0], np.cumsum(rng.poisson(daily))])
    # Polled every 6 hours with jitter; one poll missing for four days (a gap).
    hours = np.arange(0, 150 * 24 + 1, 6, dtype=float)
    hours[1:-1] += rng.uniform(-1.0, 1.0, hours.size - 2)
    hours = hours[(hours < 40 * 24) | (hours > 44 * 24)]
    good = np.interp(hours / 24.0, np.arange(151), cum)
    rows = _snapshots(1, hours, good)
    rows += _snapshots(2, np.arange(0, 30 * 24, 12.0), np.full(60, 7))  # never played
    rows += _snapshots(3, np.arange(0, 72, 12.0), np.arange(6) * 10)  # two days of data
    rows += _snapshots(4, np.arange(0, 20 * 24, 12.0), np.r_[np.arange(20), -5, np.arange(19)])
    recount = good.copy()
    recount[200:] -= 0.2 * good[200]  # the platform recounted plays downwards
    rows += _snapshots(5, hours, np.maximum(recount, 0))
    await _insert(db, rows)

    run_id = await run_model(db, "revisit", {"window": "daily", "horizon": 7})
    run = await db.fetchrow("SELECT state, metrics, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done", run["error"]
    metrics = json.loads(run["metrics"])
    assert metrics["tracks"] == 5
    assert metrics["fitted"] == 2

    fits = {
        r["track_id"]: r
        for r in await db.fetch("SELECT * FROM revisit_fits WHERE run_id = $1", run_id)
    }
    assert set(fits) == {1, 2, 3, 4, 5}
    one = fits[1]
    assert one["error"] is None
    assert one["window"] == "daily"
    assert one["n_shocks"] == 2
    shocks_json = json.loads(one["shocks"])
    assert {"start", "s0", "beta", "gamma", "omega"} <= set(shocks_json[0])
    # Play counters do not identify the audience/revisit split: no share is stored as
    # fact; the forecast JSON holds the range of equally fitting models and a note.
    assert one["revisit_share"] is None and one["audience_share"] is None
    assert one["rmse"] < 0.1 * daily.max()
    fc = json.loads(one["forecast"])
    assert fc["horizon"] == 7 and len(fc["predicted"]) == 7
    assert fc["backtest_rmse"] is not None
    split = fc["revisit_split"]
    assert split["identified"] is False
    lo, hi = split["revisit_share_range"]
    assert 0 <= lo < split["fitted_revisit_share"] < hi <= 1
    # The persistent level's plays are outside the split, and said so.
    assert split["level"] >= 0 and 0 <= split["background_share"] < 1
    assert any("not identifiable" in n for n in fc["notes"])
    assert "unknown" in " ".join(fc["notes"])  # the four-day gap is reported

    assert "all-zero" in fits[2]["error"]
    assert "too short" in fits[3]["error"]
    assert "negative" in fits[4]["error"]
    assert fits[5]["error"] is None
    assert any("recount" in n for n in json.loads(fits[5]["forecast"])["notes"])


async def test_no_snapshots_fails_the_run_with_a_reason(db: asyncpg.Connection) -> None:
    run_id = await run_model(db, "revisit", {})
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "failed"
    assert "no track_stats snapshots" in run["error"]
