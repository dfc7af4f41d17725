"""The reporting schema as SQL consumers meet it: documented, aggregatable, truthful."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from schemas.views import VIEWS
from scoring.virality.job import SCORE_BOUND
from soundfleet.dictionary import markdown, read_catalog, undocumented

DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
NUMERIC = ("integer", "bigint", "double precision", "numeric", "real", "smallint")


async def test_every_reporting_view_and_column_is_documented(db: asyncpg.Connection) -> None:
    views = await read_catalog(db)
    assert [v.name for v in views] == sorted(v.name for v in VIEWS)
    assert undocumented(views) == []
    declared = {v.name: [c[0] for c in v.columns] for v in VIEWS}
    assert {v.name: [c.name for c in v.columns] for v in views} == declared


async def test_the_committed_data_dictionary_is_the_catalog_s(db: asyncpg.Connection) -> None:
    expected = markdown(await read_catalog(db))
    assert DICTIONARY.read_text() == expected, "run: soundfleet db dictionary --out docs/..."


async def test_avg_over_every_numeric_reporting_column(db: asyncpg.Connection) -> None:
    run = await db.fetchval(
        "INSERT INTO scoring_runs (model, model_version, params, state)"
        " VALUES ('virality', 't', '{}', 'done') RETURNING id"
    )
    # a thousand scores at the bound a diverging model is stored at
    await db.executemany(
        "INSERT INTO virality_scores (run_id, track_id, model, hours_after_upload, score,"
        " predicted_viral) VALUES ($1, $2, 'sansnet', 1.0, $3, true)",
        [(run, t, SCORE_BOUND) for t in range(1000)],
    )
    await db.execute(
        "INSERT INTO users (id, followers_count, fetched_at) VALUES (1, 2147483647, now())"
    )
    for view in await read_catalog(db):
        for column in view.columns:
            if column.type in NUMERIC:
                await db.fetchval(f'SELECT avg("{column.name}") FROM reporting.{view.name}')


async def test_users_view_leaves_out_users_found_gone(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO users (id, fetched_at) VALUES"
        " (1, now() - interval '2 days'), (2, now() - interval '2 days'), (3, now())"
    )
    # 2 was found gone after it was fetched; 3 was fetched again after a stale 404
    await db.execute(
        "INSERT INTO user_ids_gone (id, checked_at) VALUES"
        " (2, now() - interval '1 day'), (3, now() - interval '1 day')"
    )
    ids = [r["user_id"] for r in await db.fetch("SELECT user_id FROM reporting.users ORDER BY 1")]
    assert ids == [1, 3]
