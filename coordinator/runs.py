"""Scoring runs: the recorded runs of the models, as researchers see them."""

from __future__ import annotations

import json

import asyncpg

from coordinator import queries as q
from coordinator.auth import Principal
from coordinator.core import ServiceState, json_or_none
from schemas.errors import NotFoundError
from schemas.jobs import ScoringRunList, ScoringRunView


class ScoringRunService(ServiceState):
    """Recorded scoring runs."""

    async def scoring_runs(
        self,
        principal: Principal,
        model: str | None,
        before: int | None,
        limit: int,
        run_id: int | None = None,
    ) -> ScoringRunList:
        """Scoring runs newest first (researchers: their jobs' runs and job-less ones)."""
        owner = None if principal.is_admin else principal.key_id
        async with self.pool.acquire() as conn:
            rows = await q.scoring_runs(conn, owner, model, before, run_id, limit)
        runs = [_run_view(r) for r in rows]
        next_before = rows[-1]["id"] if len(rows) == limit else None
        return ScoringRunList(runs=runs, next_before=next_before)

    async def scoring_run(self, run_id: int, principal: Principal) -> ScoringRunView:
        """One scoring run."""
        page = await self.scoring_runs(principal, None, None, 1, run_id)
        if not page.runs:
            raise NotFoundError(f"scoring run {run_id} does not exist")
        return page.runs[0]


def _run_view(row: asyncpg.Record) -> ScoringRunView:
    return ScoringRunView(
        id=row["id"],
        model=row["model"],
        model_version=row["model_version"],
        params=json.loads(row["params"]),
        state=row["state"],
        metrics=json_or_none(row["metrics"]),
        durations=json_or_none(row["durations"]),
        error=row["error"],
        job_id=row["job_id"],
        unit_id=row["unit_id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
