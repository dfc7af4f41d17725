"""Recording scoring runs: one ``scoring_runs`` row per run, results written atomically.

Every model (network, spam, virality, revisit) goes through :func:`run_scoring`:

1. a ``scoring_runs`` row is inserted in state ``running`` (committed at once, so an
   operator sees the run while it computes);
2. ``compute(conn, params)`` reads what it needs and returns a :class:`ScoreResult`
   (metrics plus result rows) without writing anything;
3. in ONE transaction the result rows are COPYed in and the run is set to ``done``
   with its metrics and durations. A failure anywhere leaves no result row behind.

Input a model cannot score (an empty graph, NaN counts, ...) is reported by raising
:class:`CannotScore`; the run ends ``failed`` with that reason in ``error`` and
:func:`run_scoring` returns normally. Any other exception also marks the run failed
(with the exception's text) and is re-raised.

Re-running a work unit is idempotent: ``scoring_runs.unit_id`` is unique, a finished
run of the same unit is returned as it is, an unfinished one is replaced.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from runtime import database
from schemas.errors import DatabaseError, InputError

log = structlog.get_logger("scoring.runs")


class CannotScore(InputError):
    """The input data cannot be scored (the message says why); the run is recorded failed."""


@dataclass(frozen=True)
class ResultRows:
    """Rows for one result table; ``run_id`` is prepended to every record on write.

    ``records`` may be any iterable (a generator keeps memory bounded on large runs).
    """

    table: str
    columns: Sequence[str]
    records: Iterable[Sequence[Any]]


@dataclass
class ScoreResult:
    """What a model's ``compute`` returns: run metrics, timings and rows to write."""

    metrics: dict[str, Any]
    rows: list[ResultRows] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)


Compute = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[ScoreResult]]

# Result tables a run may write; guards the table name that is interpolated into COPY.
RESULT_TABLES = frozenset(
    {"spam_scores", "network_stats", "user_graph_stats", "virality_scores", "revisit_fits"}
)


def _jsonable(value: Any) -> Any:
    """Metrics as JSON values: numpy scalars/arrays become Python ones, NaN/inf become null."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        value = item()
    elif callable(getattr(value, "tolist", None)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value))


async def _existing(conn: asyncpg.Connection, unit_id: int | None) -> int | None:
    """A finished run of this unit (returned as is); an unfinished one is removed."""
    if unit_id is None:
        return None
    row = await conn.fetchrow("SELECT id, state FROM scoring_runs WHERE unit_id = $1", unit_id)
    if row is None:
        return None
    if row["state"] == "done":
        return int(row["id"])
    # A crashed or failed earlier attempt: its results (if any) go with it (CASCADE).
    await conn.execute("DELETE FROM scoring_runs WHERE id = $1", row["id"])
    return None


async def start_run(
    conn: asyncpg.Connection,
    model: str,
    model_version: str,
    params: Mapping[str, Any],
    *,
    unit_id: int | None = None,
    job_id: int | None = None,
) -> int:
    """Insert a ``running`` run row and return its id."""
    run_id = await conn.fetchval(
        "INSERT INTO scoring_runs (model, model_version, params, state, unit_id, job_id)"
        " VALUES ($1, $2, $3::jsonb, 'running', $4, $5) RETURNING id",
        model,
        model_version,
        _dumps(dict(params)),
        unit_id,
        job_id,
    )
    return int(run_id)


async def fail_run(
    conn: asyncpg.Connection,
    run_id: int,
    error: str,
    durations: Mapping[str, float] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Mark a run ``failed`` with the reason it could not score."""
    await conn.execute(
        "UPDATE scoring_runs SET state = 'failed', error = $2, durations = $3::jsonb,"
        " metrics = $4::jsonb, finished_at = now() WHERE id = $1",
        run_id,
        error[:4000],
        _dumps(dict(durations or {})),
        _dumps(dict(metrics)) if metrics is not None else None,
    )


async def finish_run(
    conn: asyncpg.Connection, run_id: int, result: ScoreResult, durations: Mapping[str, float]
) -> None:
    """Write ``result``'s rows and mark the run ``done``, all in one transaction."""
    for rows in result.rows:
        if rows.table not in RESULT_TABLES:
            raise InputError(f"rows: {rows.table!r} is not a result table")
    async with conn.transaction():
        for rows in result.rows:
            await conn.copy_records_to_table(
                rows.table,
                columns=["run_id", *rows.columns],
                records=((run_id, *record) for record in rows.records),
            )
        await conn.execute(
            "UPDATE scoring_runs SET state = 'done', error = NULL, metrics = $2::jsonb,"
            " durations = $3::jsonb, finished_at = now() WHERE id = $1",
            run_id,
            _dumps(result.metrics),
            _dumps(dict(durations)),
        )


async def run_scoring(
    conn: asyncpg.Connection,
    model: str,
    model_version: str,
    params: Mapping[str, Any],
    compute: Compute,
    *,
    unit_id: int | None = None,
    job_id: int | None = None,
) -> int:
    """Run ``compute`` as a recorded scoring run and return the run id.

    :class:`CannotScore` ends the run ``failed`` with its reason and returns normally;
    any other exception ends it ``failed`` and propagates. Result rows and the ``done``
    state are committed together or not at all.
    """
    existing = await _existing(conn, unit_id)
    if existing is not None:
        return existing
    params = dict(params)
    try:
        run_id = await start_run(conn, model, model_version, params, unit_id=unit_id, job_id=job_id)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"cannot record a {model} scoring run: {exc}") from exc
    bound = log.bind(run_id=run_id, model=model, unit_id=unit_id, job_id=job_id)
    bound.info("scoring_run_started", params=_jsonable(params))
    t0 = time.perf_counter()
    durations: dict[str, float] = {}
    try:
        result = await compute(conn, params)
        durations.update(result.durations)
        durations["compute_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        await finish_run(conn, run_id, result, {**durations, "write_s": 0.0})
        durations["write_s"] = time.perf_counter() - t1
        # The write time is only known after the commit; record it for the operator.
        await conn.execute(
            "UPDATE scoring_runs SET durations = $2::jsonb WHERE id = $1",
            run_id,
            _dumps({**durations, "total_s": time.perf_counter() - t0}),
        )
    except CannotScore as exc:
        durations["total_s"] = time.perf_counter() - t0
        await fail_run(conn, run_id, str(exc), durations)
        bound.warning("scoring_run_cannot_score", reason=str(exc))
        return run_id
    except BaseException as exc:
        durations["total_s"] = time.perf_counter() - t0
        reason = f"{type(exc).__name__}: {exc}"
        try:
            await fail_run(conn, run_id, reason, durations)
        except database.DRIVER_ERRORS:
            bound.error("scoring_run_fail_not_recorded", reason=reason)
        bound.error("scoring_run_failed", reason=reason)
        if isinstance(exc, asyncpg.PostgresError):
            raise DatabaseError(f"{model} scoring run {run_id} failed: {exc}") from exc
        raise
    bound.info("scoring_run_done", durations=durations)
    return run_id
