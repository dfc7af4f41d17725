"""``soundfleet score revisit`` as a real process against a real database."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np

from runtime import database
from scoring.revisit.model import Shock, simulate


async def test_score_revisit_command_writes_fits(db: asyncpg.Connection, db_dsn: str) -> None:
    daily, _ = simulate([Shock(2, 2e4, 0.6 / 2e4, 0.1, 1.5)], 60)
    cum = np.concatenate([[0.0], np.cumsum(np.random.default_rng(3).poisson(daily))])
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    rows = [(7, t0 + timedelta(days=d), int(c)) for d, c in enumerate(cum)]
    rows += [(8, t0 + timedelta(days=d), 0) for d in range(30)]  # never played
    await db.copy_records_to_table(
        "track_stats", columns=["track_id", "observed_at", "playback_count"], records=rows
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "soundfleet.cli",
        "score",
        "revisit",
        "--params",
        "window=daily",
        "horizon=5",
        env=database.env_with_database(db_dsn),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "(revisit) done" in text
    metrics = json.loads(text[text.index("{") :])
    assert metrics["tracks"] == 2 and metrics["fitted"] == 1
    fits = {r["track_id"]: r for r in await db.fetch("SELECT * FROM revisit_fits")}
    assert fits[7]["n_shocks"] == 1 and fits[7]["error"] is None
    assert len(json.loads(fits[7]["forecast"])["predicted"]) == 5
    assert "all-zero" in fits[8]["error"]
