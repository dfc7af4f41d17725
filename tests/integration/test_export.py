"""``soundfleet export``: reporting views streamed to CSV, JSON lines and Parquet."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pyarrow.parquet as pq
import pytest

from runtime.sink import write_rows
from schemas import records
from schemas.errors import InputError
from schemas.tables import follows
from soundfleet.export import export_view

T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def _follows(db: asyncpg.Connection, n: int) -> None:
    rows = [
        records.follow_row(i % 97 + 1, i % 13 + 1, T0 + timedelta(seconds=i), "exact", T0)
        for i in range(n)
    ]
    await write_rows(db, follows, rows)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
async def test_export_formats(
    db: asyncpg.Connection, db_dsn: str, tmp_path: Path, fmt: str
) -> None:
    await _follows(db, 2_345)
    out = tmp_path / f"follows.{fmt}"
    # A small batch makes the export go through several cursor batches.
    assert await export_view(db_dsn, "follows", fmt, out, batch=500) == 2_345  # type: ignore[arg-type]
    if fmt == "csv":
        with out.open() as fh:
            rows = list(csv.DictReader(fh))
        first = rows[0]
        # PostgreSQL's own CSV, times in UTC whatever the server's zone
        assert first["event_time"].endswith("+00") and first["event_time"][10] == " "
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        first = rows[0]
    else:
        table = pq.read_table(out)
        rows = table.to_pylist()
        first = rows[0]
        assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
    assert len(rows) == 2_345
    assert set(first) == {"follower_id", "followee_id", "event_time", "time_source"}
    times = {str(r["event_time"]) for r in rows}
    assert len(times) == 2_345


async def test_export_jsonb_and_arrays(db: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> None:
    run = await db.fetchval(
        "INSERT INTO scoring_runs (model, model_version, params, state, metrics) "
        "VALUES ('network', 't', '{\"a\": 1}', 'done', '{\"f1\": 0.5}') RETURNING id"
    )
    await db.execute(
        "INSERT INTO network_stats (run_id, scope, nodes, edges, motif_counts, motif_z) "
        "VALUES ($1, 'global', 3, 2, $2, $3)",
        run,
        list(range(13)),
        [0.5] * 13,
    )
    out = tmp_path / "n.parquet"
    assert await export_view(db_dsn, "network_stats", "parquet", out) == 1
    assert pq.read_table(out).to_pylist()[0]["motif_counts"] == list(range(13))
    out = tmp_path / "runs.jsonl"
    assert await export_view(db_dsn, "scoring_runs", "jsonl", out) == 1
    assert json.loads(out.read_text())["metrics"] == {"f1": 0.5}


async def test_unknown_view(db_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown view 'secrets'"):
        await export_view(db_dsn, "secrets", "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
