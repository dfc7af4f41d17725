"""Jobs: submission (quota, seeds, expansion into units), views with progress, cancel."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg
import structlog

from coordinator import expand
from coordinator import queries as q
from coordinator.auth import Principal
from coordinator.core import ServiceState, may_see
from coordinator.errors import FieldsError, HttpError
from schemas.errors import ConflictError, NotFoundError
from schemas.jobs import (
    FieldError,
    JobList,
    JobProgress,
    JobSubmit,
    JobView,
    NetworkJob,
    NetworkSpec,
    PlayPollJob,
    ScoreJob,
    TrackTimelinesJob,
    UserSweepJob,
    UserTracksJob,
)

log = structlog.get_logger("coordinator")


class JobService(ServiceState):
    """Researchers' jobs."""

    async def submit(self, job: JobSubmit, principal: Principal) -> JobView:
        """Validate, store and expand a job into its units (one transaction)."""
        max_attempts = job.max_attempts or self.settings.max_attempts
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                seeds: list[int] = []
                if isinstance(job, NetworkJob):
                    seeds = await self._resolve_seeds(conn, job.spec)
                units: q.UnitRows | None = None
                if isinstance(job, UserSweepJob):
                    spec = job.spec
                    new_units = -(-(spec.id_to - spec.id_from) // spec.chunk)
                else:
                    if isinstance(job, NetworkJob):
                        units = expand.network_seeds(job.spec, seeds)
                    elif isinstance(job, UserTracksJob):
                        units = expand.user_tracks_job(job.spec)
                    elif isinstance(job, TrackTimelinesJob):
                        units = expand.track_timelines(job.spec)
                    elif isinstance(job, PlayPollJob):
                        units = expand.play_polls(job.spec)
                    else:
                        assert isinstance(job, ScoreJob)
                        units = expand.score(job.spec)
                    new_units = len(units.payloads)
                if not principal.is_admin:
                    await self._check_quota(conn, principal, new_units)
                job_id = await q.insert_job(
                    conn, job.kind, job.spec.model_dump_json(), principal.key_id, job.priority
                )
                if isinstance(job, UserSweepJob):
                    spec = job.spec
                    n = await q.insert_sweep(
                        conn,
                        job_id,
                        spec.id_from,
                        spec.id_to,
                        spec.chunk,
                        job.priority,
                        max_attempts,
                        spec.shuffle,
                    )
                else:
                    assert units is not None
                    n = await q.insert_units(conn, job_id, units, job.priority, max_attempts)
            log.info("job_submitted", job_id=job_id, kind=job.kind, units=n, owner=principal.name)
            return await self._view(conn, job_id)

    async def _check_quota(
        self, conn: asyncpg.Connection, principal: Principal, new_units: int
    ) -> None:
        """Refuse (429) a submission past the key's quota of active jobs or queued units."""
        s = self.settings
        active, queued = await q.key_load(conn, principal.key_id)
        if active >= s.quota_active_jobs:
            raise HttpError(
                f"key {principal.name!r} has {active} active jobs, its quota is "
                f"{s.quota_active_jobs}: wait for one to finish or cancel one",
                429,
            )
        if queued + new_units > s.quota_queued_units:
            raise HttpError(
                f"key {principal.name!r} has {queued:,} units queued; this job adds "
                f"{new_units:,}, past its quota of {s.quota_queued_units:,} queued units",
                429,
            )

    async def _resolve_seeds(self, conn: asyncpg.Connection, spec: NetworkSpec) -> list[int]:
        names = [s for s in spec.seeds if isinstance(s, str)]
        known = await q.resolve_permalinks(conn, names) if names else {}
        errors = [
            FieldError(
                field=f"spec.seeds.{i}",
                message=(
                    f"permalink {seed!r} is not a user in the database; give its numeric id "
                    "(or crawl the user first)"
                ),
                type="unknown_permalink",
            )
            for i, seed in enumerate(spec.seeds)
            if isinstance(seed, str) and seed.lower() not in known
        ]
        if errors:
            raise FieldsError("network seeds could not be resolved", errors)
        ids = [s if isinstance(s, int) else known[s.lower()] for s in spec.seeds]
        return list(dict.fromkeys(ids))

    async def _view(self, conn: asyncpg.Connection, job_id: int) -> JobView:
        row = await q.get_job(conn, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        prog = await q.progress(conn, [job_id])
        return _job_view(row, prog.get(job_id))

    async def get_job(self, job_id: int, principal: Principal) -> JobView:
        """One job with progress; researchers only see their own."""
        async with self.pool.acquire() as conn:
            row = await q.get_job(conn, job_id)
            if row is None or not may_see(principal, row):
                raise NotFoundError(f"job {job_id} does not exist")
            prog = await q.progress(conn, [job_id])
            if await self._heal(conn, [row], prog):
                return await self._view(conn, job_id)
        return _job_view(row, prog.get(job_id))

    async def _heal(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[asyncpg.Record],
        prog: dict[int, asyncpg.Record],
    ) -> bool:
        """Close jobs whose units all ended but whose row still says otherwise.

        Completions close their job right after committing; a coordinator that died in
        between leaves the job `running`. Reading it repairs it (True if any changed).
        """
        stuck = [
            r["id"]
            for r in rows
            if r["state"] in ("queued", "running")
            and (p := prog.get(r["id"])) is not None
            and p["queued"] + p["leased"] == 0
        ]
        return bool(stuck) and bool(await q.finish_jobs(conn, stuck))

    async def list_jobs(
        self,
        principal: Principal,
        state: str | None,
        kind: str | None,
        before: int | None,
        limit: int,
    ) -> JobList:
        """Jobs newest first; researchers only see their own."""
        owner = None if principal.is_admin else principal.key_id
        async with self.pool.acquire() as conn:
            rows = await q.list_jobs(conn, owner, state, kind, before, limit)
            prog = await q.progress(conn, [r["id"] for r in rows])
            if await self._heal(conn, rows, prog):
                rows = await q.list_jobs(conn, owner, state, kind, before, limit)
                prog = await q.progress(conn, [r["id"] for r in rows])
        views = [_job_view(r, prog.get(r["id"])) for r in rows]
        next_before = rows[-1]["id"] if len(rows) == limit else None
        return JobList(jobs=views, next_before=next_before)

    async def dead_units(self, limit: int = 50) -> list[asyncpg.Record]:
        """The most recent dead units, newest first, with their last error."""
        async with self.pool.acquire() as conn:
            return await q.dead_units(conn, limit)

    async def cancel(self, job_id: int, principal: Principal) -> JobView:
        """Cancel queued units now; leased ones learn it on their next heartbeat."""
        async with self.pool.acquire() as conn:
            row = await q.get_job(conn, job_id)
            if row is None or not may_see(principal, row):
                raise NotFoundError(f"job {job_id} does not exist")
            if not await q.cancel_job(conn, job_id) and row["state"] != "cancelled":
                raise ConflictError(f"job {job_id} already ended ({row['state']})")
            log.info("job_cancelled", job_id=job_id, by=principal.name)
            return await self._view(conn, job_id)


RATE_WINDOW_S = 60.0


def _units_per_s(
    row: asyncpg.Record, prog: asyncpg.Record | None, recent: int, finished: int
) -> float:
    """Units finished per second over the job's own history.

    A running job's rate is over the last minute, or over its whole age while it is
    younger than that (a 20-second-old job's units are not spread over 60 s); a
    finished job's is over its life from submission to its end.
    """
    if prog is None:
        return 0.0
    now_s = float(prog["now_s"])
    age_s = now_s - row["created_at"].timestamp()
    if row["finished_at"] is not None:
        life_s = row["finished_at"].timestamp() - row["created_at"].timestamp()
        return finished / life_s if life_s > 0 else 0.0
    window = min(RATE_WINDOW_S, age_s)
    return recent / window if window > 0 else 0.0


def _job_view(row: asyncpg.Record, prog: asyncpg.Record | None) -> JobView:
    counts = {
        k: int(prog[k]) if prog is not None else 0
        for k in (
            "total",
            "queued",
            "retrying",
            "leased",
            "done",
            "failed",
            "dead",
            "cancelled",
            "rows_landed",
            "recent",
            "finished",
        )
    }
    rate = _units_per_s(row, prog, counts["recent"], counts["finished"])
    remaining = counts["queued"] + counts["leased"]
    if remaining == 0:
        eta: float | None = 0.0
    elif rate > 0:
        eta = remaining / rate
    else:
        eta = None
    return JobView(
        id=row["id"],
        kind=row["kind"],
        spec=json.loads(row["spec"]),
        state=row["state"],
        priority=row["priority"],
        owner=row["owner"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        progress=JobProgress(
            **{k: v for k, v in counts.items() if k not in ("recent", "finished")},
            units_per_s=rate,
            eta_s=eta,
        ),
    )
