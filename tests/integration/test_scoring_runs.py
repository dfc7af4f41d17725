"""scoring.runs: run rows, atomic result writes, failures recorded, unit idempotency."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from runtime.params import parse_params
from schemas.errors import InputError
from scoring.registry import get_model
from scoring.runs import CannotScore, ResultRows, ScoreResult, run_scoring

COLS = (
    "user_id",
    "pagerank",
    "in_degree",
    "out_degree",
    "max_follow_multiplicity",
    "repeated_follows",
)


async def _ok(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
    rows = [(u, 0.5, 1, 2, 1, 0) for u in range(1, params["n"] + 1)]
    return ScoreResult(
        metrics={"n": params["n"], "nan": float("nan")},
        rows=[ResultRows("user_graph_stats", COLS, rows)],
        durations={"read_s": 0.01},
    )


async def test_done_run_writes_rows_metrics_and_durations(db: asyncpg.Connection) -> None:
    run_id = await run_scoring(db, "network", "t1", {"n": 3}, _ok, unit_id=None)
    run = await db.fetchrow("SELECT * FROM scoring_runs WHERE id = $1", run_id)
    assert run["state"] == "done" and run["error"] is None
    assert run["model_version"] == "t1" and json.loads(run["params"]) == {"n": 3}
    assert json.loads(run["metrics"]) == {"n": 3, "nan": None}
    durations = json.loads(run["durations"])
    assert {"read_s", "compute_s", "write_s", "total_s"} <= durations.keys()
    assert run["finished_at"] is not None
    count = await db.fetchval("SELECT count(*) FROM user_graph_stats WHERE run_id = $1", run_id)
    assert count == 3


async def test_cannot_score_records_reason_and_writes_nothing(db: asyncpg.Connection) -> None:
    async def empty(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
        raise CannotScore("the follow graph is empty")

    run_id = await run_scoring(db, "network", "t1", {}, empty)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs WHERE id = $1", run_id)
    assert (run["state"], run["error"]) == ("failed", "the follow graph is empty")
    assert await db.fetchval("SELECT count(*) FROM user_graph_stats") == 0


async def test_failed_write_leaves_no_partial_rows(db: asyncpg.Connection) -> None:
    async def half_bad(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
        good = ResultRows("user_graph_stats", COLS, [(1, 0.5, 1, 1, 1, 0)])
        # The second batch violates NOT NULL: the first must be rolled back with it.
        bad = ResultRows("user_graph_stats", COLS, [(2, None, 1, 1, 1, 0)])
        return ScoreResult(metrics={}, rows=[good, bad])

    with pytest.raises(Exception, match="null"):
        await run_scoring(db, "network", "t1", {}, half_bad)
    run = await db.fetchrow("SELECT state, error FROM scoring_runs")
    assert run["state"] == "failed" and "null" in run["error"]
    assert await db.fetchval("SELECT count(*) FROM user_graph_stats") == 0


async def test_unit_rerun_is_idempotent(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO jobs (id, kind, spec) VALUES (7, 'score', '{}')")
    calls = []

    async def counted(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
        calls.append(1)
        return await _ok(conn, params)

    first = await run_scoring(db, "network", "t1", {"n": 2}, counted, unit_id=41, job_id=7)
    again = await run_scoring(db, "network", "t1", {"n": 2}, counted, unit_id=41, job_id=7)
    assert first == again and len(calls) == 1
    assert await db.fetchval("SELECT count(*) FROM user_graph_stats") == 2


async def test_unfinished_unit_run_is_replaced(db: asyncpg.Connection) -> None:
    async def broken(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        await run_scoring(db, "network", "t1", {"n": 1}, broken, unit_id=5)
    second = await run_scoring(db, "network", "t1", {"n": 1}, _ok, unit_id=5)
    states = await db.fetch("SELECT id, state FROM scoring_runs")
    assert [(r["id"], r["state"]) for r in states] == [(second, "done")]


def test_params_parse_json_values_and_text() -> None:
    assert parse_params(["k=5", "x=0.5", "scope=ego", "flag=true"]) == {
        "k": 5,
        "x": 0.5,
        "scope": "ego",
        "flag": True,
    }
    with pytest.raises(InputError, match="key=value"):
        parse_params(["oops"])


def test_unknown_model_is_an_input_error() -> None:
    with pytest.raises(InputError, match="model"):
        get_model("astrology")
