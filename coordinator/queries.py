"""Every SQL statement of the coordinator, as asyncpg calls on a given connection.

The queue lives in ``work_units``; a unit's ``attempt`` is its fencing token: each claim
increments it, and heartbeat/complete/fail/release only touch a row whose ``attempt``
still equals the token the caller holds and whose state is still ``leased``. Expired
leases are re-claimed by the claim query itself (no reaper process): a worker that
died simply stops heartbeating and its unit becomes claimable when the lease runs out.

Statements that address one unit by id compare ``coalesce(state, '') = 'leased'``
rather than ``state = 'leased'``: the plain form lets the planner prefer the partial
index of leased units (estimated tiny when statistics are stale) and scan every lease
in flight instead of one primary-key lookup.

Job state is written rarely (first claim, finish, cancel) and progress is derived from
``work_units`` at read time, so completing units never contends on a hot ``jobs`` row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.work import CRAWL_KINDS

# ------------------------------------------------------------------------- leasing

# Expired leases first (they have waited longest), then due queued units in priority
# order. Both branches lock with SKIP LOCKED so concurrent claimers never block each
# other and never pick the same row. An expired unit of a cancelled job is closed as
# `cancelled`, one that used up its attempts as `dead`; the caller filters those out.
CLAIM = """
WITH expired AS (
    SELECT w.id FROM work_units w
    WHERE w.state = 'leased' AND w.lease_expires_at < now() AND w.kind = ANY($2::text[])
    ORDER BY w.lease_expires_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), fresh AS (
    SELECT w.id FROM work_units w
    WHERE w.state = 'queued' AND w.not_before <= now() AND w.kind = ANY($2::text[])
    ORDER BY w.priority, w.not_before, w.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), picked AS (
    (SELECT id FROM expired) UNION ALL (SELECT id FROM fresh) LIMIT $3
)
UPDATE work_units w SET
    state = CASE
        WHEN j.state = 'cancelled' THEN 'cancelled'
        WHEN w.state = 'leased' AND w.attempt >= w.max_attempts THEN 'dead'
        ELSE 'leased' END,
    last_error = CASE
        WHEN w.state = 'leased' AND w.attempt >= w.max_attempts AND j.state <> 'cancelled'
        THEN 'lease expired on attempt ' || w.attempt || ' (worker ' || coalesce(w.worker_id, '?')
             || ' stopped heartbeating); ' || coalesce('last error: ' || w.last_error, 'no error')
        ELSE w.last_error END,
    attempt = CASE WHEN p.closing THEN w.attempt ELSE w.attempt + 1 END,
    worker_id = CASE WHEN p.closing THEN w.worker_id ELSE $1 END,
    lease_expires_at = CASE WHEN p.closing THEN NULL
                            ELSE now() + make_interval(secs => $4) END,
    done_at = CASE WHEN p.closing THEN now() END,
    progress = jsonb_build_object('base', w.rows_landed),
    updated_at = now()
FROM (SELECT pk.id,
             j2.state = 'cancelled'
             OR (u.state = 'leased' AND u.attempt >= u.max_attempts) AS closing
      FROM picked pk JOIN work_units u ON u.id = pk.id JOIN jobs j2 ON j2.id = u.job_id) p,
     jobs j
WHERE w.id = p.id AND j.id = w.job_id
RETURNING w.id, w.job_id, w.kind, w.payload::text AS payload, w.attempt, w.cursor,
          w.lease_expires_at, w.state
"""

MARK_JOBS_RUNNING = """
UPDATE jobs SET state = 'running', updated_at = now()
WHERE id = ANY($1::bigint[]) AND state = 'queued'
"""


def _moved(cursor: str) -> str:
    """SQL: the cursor parameter ``cursor`` moves the unit on, for this attempt's first time."""
    return (
        f"({cursor}::text IS NOT NULL AND {cursor}::text IS DISTINCT FROM w.cursor "
        "AND w.progress->>'moved' IS NULL)"
    )


def _refund(cursor: str) -> str:
    """SQL SET items: an attempt that moves the unit's cursor on gets its attempt back.

    ``max_attempts`` grows by one, once per attempt, as a release's does: a long list
    walked under pod churn must not die of kills while it keeps landing pages, and an
    attempt that gets nowhere still counts, so a unit that never moves ends as `dead`.
    """
    moved = _moved(cursor)
    return f"""
    max_attempts = w.max_attempts + CASE WHEN {moved} THEN 1 ELSE 0 END,
    progress = CASE WHEN {moved} THEN w.progress || '{{"moved": true}}'::jsonb
                    ELSE w.progress END,"""


HEARTBEAT = f"""
UPDATE work_units w SET
    lease_expires_at = now() + make_interval(secs => $5),{_refund("$4")}
    cursor = coalesce($4, w.cursor),
    rows_landed = coalesce((w.progress->>'base')::bigint, 0) + $6,
    updated_at = now()
FROM jobs j
WHERE w.id = $1 AND w.attempt = $2 AND w.worker_id = $3 AND coalesce(w.state, '') = 'leased'
  AND j.id = w.job_id
RETURNING w.lease_expires_at, j.state = 'cancelled' AS cancel
"""

COMPLETE = """
UPDATE work_units w SET
    state = 'done',
    lease_expires_at = NULL,
    done_at = now(),
    rows_landed = coalesce((w.progress->>'base')::bigint, 0) + v.rows,
    updated_at = now()
FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS v(id, token, rows)
WHERE w.id = v.id AND w.attempt = v.token AND w.worker_id = $4 AND coalesce(w.state, '') = 'leased'
RETURNING w.id, w.job_id, w.kind, w.payload::text AS payload, w.depth, w.priority,
          w.max_attempts
"""

# The same, returning only what closing the jobs needs (no discoveries to expand).
COMPLETE_LEAN = COMPLETE[: COMPLETE.index("RETURNING")] + "RETURNING w.id, w.job_id\n"

# Retryable failures go back to `queued` with exponential backoff and full-range jitter
# in [0.5, 1.0] of the delay; out of attempts (or not retryable) they stop for good.
FAIL = f"""
UPDATE work_units w SET
    state = CASE
        WHEN j.state = 'cancelled' THEN 'cancelled'
        WHEN NOT $5 THEN 'failed'
        WHEN w.attempt >= w.max_attempts AND NOT {_moved("$8")} THEN 'dead'
        ELSE 'queued' END,{_refund("$8")}
    not_before = now() + make_interval(
        secs => least($7::float8, $6::float8 * power(2, greatest(w.attempt - 1, 0)))
                * (0.5 + random() * 0.5)),
    last_error = $4,
    lease_expires_at = NULL,
    cursor = coalesce($8, w.cursor),
    rows_landed = coalesce((w.progress->>'base')::bigint, 0) + $9,
    updated_at = now(),
    done_at = CASE WHEN $5 AND (w.attempt < w.max_attempts OR {_moved("$8")})
                        AND j.state <> 'cancelled'
                   THEN NULL ELSE now() END
FROM jobs j
WHERE w.id = $1 AND w.attempt = $2 AND w.worker_id = $3 AND coalesce(w.state, '') = 'leased'
  AND j.id = w.job_id
RETURNING w.state, w.job_id
"""

# A release gives the unit back untouched; it does not use up one of its attempts.
RELEASE = """
UPDATE work_units w SET
    state = 'queued',
    lease_expires_at = NULL,
    not_before = now(),
    cursor = coalesce($4, w.cursor),
    rows_landed = coalesce((w.progress->>'base')::bigint, 0) + $5,
    max_attempts = w.max_attempts + 1,
    updated_at = now()
WHERE w.id = $1 AND w.attempt = $2 AND w.worker_id = $3 AND coalesce(w.state, '') = 'leased'
RETURNING w.state, w.job_id
"""

UNIT_STATE = "SELECT state, attempt, worker_id FROM work_units WHERE id = $1"

# Runs after the unit's transaction committed, so the last of several concurrent
# finishers always sees every other one's commit and closes the job.
FINISH_JOBS = """
UPDATE jobs j SET
    state = CASE WHEN EXISTS (
        SELECT 1 FROM work_units w WHERE w.job_id = j.id AND w.state IN ('dead', 'failed'))
        THEN 'failed' ELSE 'done' END,
    error = (SELECT count(*) || ' unit(s) failed; last error: ' || max(w.last_error)
             FROM work_units w WHERE w.job_id = j.id AND w.state IN ('dead', 'failed')
             HAVING count(*) > 0),
    rows_landed = (SELECT coalesce(sum(w.rows_landed), 0) FROM work_units w
                   WHERE w.job_id = j.id),
    finished_at = now(),
    updated_at = now()
WHERE j.id = ANY($1::bigint[]) AND j.state IN ('queued', 'running')
  AND NOT EXISTS (SELECT 1 FROM work_units w
                  WHERE w.job_id = j.id AND w.state IN ('queued', 'leased'))
RETURNING j.id, j.state
"""

UPSERT_WORKER = """
INSERT INTO workers (id, hostname, pid, kinds, state, last_seen_at)
VALUES ($1, $2, $3, $4::text[], 'active', now())
ON CONFLICT (id) DO UPDATE SET
    last_seen_at = now(),
    kinds = CASE WHEN cardinality(EXCLUDED.kinds) > 0 THEN EXCLUDED.kinds
                 ELSE workers.kinds END,
    hostname = coalesce(EXCLUDED.hostname, workers.hostname),
    pid = coalesce(EXCLUDED.pid, workers.pid)
"""


@dataclass(frozen=True)
class ClaimedRow:
    """One row the claim query touched (leased, or closed as dead/cancelled)."""

    unit_id: int
    job_id: int
    kind: str
    payload: dict[str, Any]
    token: int
    cursor: str | None
    lease_expires_at: datetime
    state: str


async def claim(
    conn: asyncpg.Connection, worker_id: str, kinds: Sequence[str], limit: int, lease_s: float
) -> list[ClaimedRow]:
    """Claim up to ``limit`` units (one statement, so atomic without BEGIN/COMMIT)."""
    rows = await conn.fetch(CLAIM, worker_id, list(kinds), limit, lease_s)
    return [
        ClaimedRow(
            unit_id=r["id"],
            job_id=r["job_id"],
            kind=r["kind"],
            payload=json.loads(r["payload"]),
            token=r["attempt"],
            cursor=r["cursor"],
            lease_expires_at=r["lease_expires_at"],
            state=r["state"],
        )
        for r in rows
    ]


async def mark_jobs_running(conn: asyncpg.Connection, job_ids: Sequence[int]) -> None:
    """Move queued jobs to running (their first unit was leased)."""
    await conn.execute(MARK_JOBS_RUNNING, sorted(set(job_ids)))


async def heartbeat(
    conn: asyncpg.Connection,
    unit_id: int,
    token: int,
    worker_id: str,
    cursor: str | None,
    lease_s: float,
    rows: int,
) -> asyncpg.Record | None:
    """Extend a lease; None when the token is stale (or the unit unknown)."""
    return await conn.fetchrow(HEARTBEAT, unit_id, token, worker_id, cursor, lease_s, rows)


async def unit_state(conn: asyncpg.Connection, unit_id: int) -> asyncpg.Record | None:
    """A unit's state and current token (to explain a refusal)."""
    return await conn.fetchrow(UNIT_STATE, unit_id)


async def complete(
    conn: asyncpg.Connection,
    worker_id: str,
    unit_ids: Sequence[int],
    tokens: Sequence[int],
    rows: Sequence[int],
) -> list[asyncpg.Record]:
    """Mark the units whose tokens are current as done; returns those (call in a tx)."""
    return list(await conn.fetch(COMPLETE, list(unit_ids), list(tokens), list(rows), worker_id))


async def complete_lean(
    conn: asyncpg.Connection,
    worker_id: str,
    unit_ids: Sequence[int],
    tokens: Sequence[int],
    rows: Sequence[int],
) -> list[asyncpg.Record]:
    """:func:`complete` returning only ``id`` and ``job_id`` of the units done."""
    return list(
        await conn.fetch(COMPLETE_LEAN, list(unit_ids), list(tokens), list(rows), worker_id)
    )


async def fail(
    conn: asyncpg.Connection,
    unit_id: int,
    token: int,
    worker_id: str,
    error: str,
    retryable: bool,
    backoff_base_s: float,
    backoff_max_s: float,
    cursor: str | None,
    rows: int = 0,
) -> asyncpg.Record | None:
    """Record a failure (with the rows the attempt landed): retry later, or
    `failed`/`dead`; None when the token is stale."""
    return await conn.fetchrow(
        FAIL,
        unit_id,
        token,
        worker_id,
        error,
        retryable,
        backoff_base_s,
        backoff_max_s,
        cursor,
        rows,
    )


async def release(
    conn: asyncpg.Connection,
    unit_id: int,
    token: int,
    worker_id: str,
    cursor: str | None,
    rows: int = 0,
) -> asyncpg.Record | None:
    """Give a unit back for immediate re-claim; None when the token is stale."""
    row = await conn.fetchrow(RELEASE, unit_id, token, worker_id, cursor, rows)
    if row is not None:
        await announce_work(conn)
    return row


# ----------------------------------------------------------------------- long-poll

WORK_CHANNEL = "soundfleet_work"
"""The channel every coordinator process listens on: units became leasable."""


async def announce_work(conn: asyncpg.Connection) -> None:
    """Wake the lease calls waiting for work (on every coordinator), at commit."""
    await conn.execute(f"NOTIFY {WORK_CHANNEL}")


async def _announce_added(conn: asyncpg.Connection, status: str) -> int:
    """Units an ``INSERT`` status reports; waiting lease calls are woken only if any."""
    added = int(status.rsplit(" ", 1)[1])
    if added:  # a network expansion often adds nothing: wake no one for it
        await announce_work(conn)
    return added


async def finish_jobs(conn: asyncpg.Connection, job_ids: Sequence[int]) -> list[asyncpg.Record]:
    """Close the given jobs that have no queued or leased unit left."""
    return list(await conn.fetch(FINISH_JOBS, sorted(set(job_ids))))


async def upsert_worker(
    conn: asyncpg.Connection,
    worker_id: str,
    kinds: Sequence[str],
    hostname: str | None,
    pid: int | None,
) -> None:
    """Record that ``worker_id`` is alive (and what it serves)."""
    await conn.execute(UPSERT_WORKER, worker_id, hostname, pid, list(kinds))


# ----------------------------------------------------------------------- expansion

INSERT_UNITS = """
INSERT INTO work_units (job_id, kind, payload, dedup_key, depth, priority, max_attempts,
                        not_before)
SELECT $1, $2, u.p::jsonb, u.k, u.d, $3, $4, now() + make_interval(secs => u.s)
FROM unnest($5::text[], $6::text[], $7::int[], $8::float8[]) AS u(p, k, d, s)
ON CONFLICT (job_id, dedup_key) DO NOTHING
"""

# A user sweep can be a million ranges: generate them in the database.
INSERT_SWEEP = """
INSERT INTO work_units (job_id, kind, payload, dedup_key, depth, priority, max_attempts)
SELECT $1, 'user_range',
       jsonb_build_object('id_from', s, 'id_to', least(s + $4, $3)),
       'r:' || s, 0, $5, $6
FROM generate_series($2::bigint, $3::bigint - 1, $4::bigint) AS s
ORDER BY CASE WHEN $7 THEN random() ELSE 0 END, s
"""

# What one key has in flight, under a per-key transaction lock so that two concurrent
# submissions cannot both pass the quota.
KEY_LOAD = """
SELECT pg_advisory_xact_lock(hashtext('soundfleet-quota'), $1::int),
       (SELECT count(*) FROM jobs WHERE owner_key_id = $1 AND state IN ('queued', 'running'))
           AS active_jobs,
       (SELECT count(*) FROM work_units u JOIN jobs j ON j.id = u.job_id
        WHERE j.owner_key_id = $1 AND j.state IN ('queued', 'running') AND u.state = 'queued')
           AS queued_units
"""

INSERT_JOB = """
INSERT INTO jobs (kind, spec, state, owner_key_id, priority)
VALUES ($1, $2::jsonb, 'queued', $3, $4)
RETURNING id
"""

LOCK_JOB = "SELECT kind, spec::text AS spec, state FROM jobs WHERE id = $1 FOR UPDATE"

COUNT_UNITS = "SELECT count(*) FROM work_units WHERE job_id = $1"

NEW_USERS = """
SELECT u.id FROM unnest($2::bigint[]) WITH ORDINALITY AS u(id, n)
WHERE NOT EXISTS (SELECT 1 FROM work_units w
                  WHERE w.job_id = $1 AND w.dedup_key = $3 || u.id)
GROUP BY u.id ORDER BY min(u.n)
LIMIT $4
"""

RESOLVE_PERMALINKS = """
SELECT DISTINCT ON (lower(permalink)) lower(permalink) AS permalink, id
FROM users WHERE lower(permalink) = ANY($1::text[])
ORDER BY lower(permalink), fetched_at DESC
"""


@dataclass(frozen=True)
class UnitRows:
    """Units to insert for one kind, column by column."""

    kind: str
    payloads: list[str]
    keys: list[str]
    depths: list[int]
    delays_s: list[float]


async def key_load(conn: asyncpg.Connection, key_id: int) -> tuple[int, int]:
    """(active jobs, queued units) of ``key_id``, locking its submissions until commit."""
    row = await conn.fetchrow(KEY_LOAD, key_id)
    return int(row["active_jobs"]), int(row["queued_units"])


async def insert_job(
    conn: asyncpg.Connection, kind: str, spec_json: str, owner_key_id: int | None, priority: int
) -> int:
    """Insert a job row; returns its id (call in a tx with its units)."""
    job_id: int = await conn.fetchval(INSERT_JOB, kind, spec_json, owner_key_id, priority)
    return job_id


async def insert_units(
    conn: asyncpg.Connection, job_id: int, units: UnitRows, priority: int, max_attempts: int
) -> int:
    """Insert units, skipping dedup keys the job already has; returns how many were new."""
    status: str = await conn.execute(
        INSERT_UNITS,
        job_id,
        units.kind,
        priority,
        max_attempts,
        units.payloads,
        units.keys,
        units.depths,
        units.delays_s,
    )
    return await _announce_added(conn, status)


async def insert_sweep(
    conn: asyncpg.Connection,
    job_id: int,
    id_from: int,
    id_to: int,
    chunk: int,
    priority: int,
    max_attempts: int,
    shuffle: bool,
) -> int:
    """Insert a user sweep's ranges; returns how many."""
    status: str = await conn.execute(
        INSERT_SWEEP, job_id, id_from, id_to, chunk, priority, max_attempts, shuffle
    )
    return await _announce_added(conn, status)


async def lock_job(conn: asyncpg.Connection, job_id: int) -> asyncpg.Record | None:
    """Lock a job row (serializes network expansion of one job)."""
    return await conn.fetchrow(LOCK_JOB, job_id)


async def count_units(conn: asyncpg.Connection, job_id: int) -> int:
    """How many units a job has."""
    n: int = await conn.fetchval(COUNT_UNITS, job_id)
    return n


async def new_users(
    conn: asyncpg.Connection, job_id: int, user_ids: Sequence[int], key_prefix: str, limit: int
) -> list[int]:
    """Of ``user_ids`` (in order, deduplicated), those the job has not queued yet."""
    rows = await conn.fetch(NEW_USERS, job_id, list(user_ids), key_prefix, limit)
    return [r["id"] for r in rows]


async def resolve_permalinks(conn: asyncpg.Connection, permalinks: Sequence[str]) -> dict[str, int]:
    """Known users' ids by lower-cased permalink."""
    rows = await conn.fetch(RESOLVE_PERMALINKS, [p.lower() for p in permalinks])
    return {r["permalink"]: r["id"] for r in rows}


# ---------------------------------------------------------------------------- jobs

JOB_COLUMNS = """
j.id, j.kind, j.spec::text AS spec, j.state, j.priority, k.name AS owner, j.error,
j.created_at, j.updated_at, j.finished_at, j.owner_key_id
"""

GET_JOB = f"""
SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN api_keys k ON k.id = j.owner_key_id
WHERE j.id = $1
"""

LIST_JOBS = f"""
SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN api_keys k ON k.id = j.owner_key_id
WHERE ($1::bigint IS NULL OR j.owner_key_id = $1)
  AND ($2::text IS NULL OR j.state = $2)
  AND ($3::text IS NULL OR j.kind = $3)
  AND ($4::bigint IS NULL OR j.id < $4)
ORDER BY j.id DESC
LIMIT $5
"""

PROGRESS = """
SELECT job_id,
       count(*) AS total,
       count(*) FILTER (WHERE state = 'queued') AS queued,
       count(*) FILTER (WHERE state = 'queued' AND last_error IS NOT NULL) AS retrying,
       count(*) FILTER (WHERE state = 'leased') AS leased,
       count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
       coalesce(sum(rows_landed), 0) AS rows_landed,
       count(*) FILTER (WHERE state IN ('done', 'failed', 'dead')
                        AND done_at > now() - interval '1 minute') AS recent,
       count(*) FILTER (WHERE state IN ('done', 'failed', 'dead')) AS finished,
       extract(epoch FROM now())::float8 AS now_s
FROM work_units WHERE job_id = ANY($1::bigint[])
GROUP BY job_id
"""

CANCEL_JOB = """
UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now()
WHERE id = $1 AND state IN ('queued', 'running')
RETURNING id
"""

CANCEL_UNITS = """
UPDATE work_units SET state = 'cancelled', updated_at = now(), done_at = now()
WHERE job_id = $1 AND state = 'queued'
"""


async def get_job(conn: asyncpg.Connection, job_id: int) -> asyncpg.Record | None:
    """One job row with its owner's key name."""
    return await conn.fetchrow(GET_JOB, job_id)


async def list_jobs(
    conn: asyncpg.Connection,
    owner_key_id: int | None,
    state: str | None,
    kind: str | None,
    before: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Jobs newest first, filtered."""
    return list(await conn.fetch(LIST_JOBS, owner_key_id, state, kind, before, limit))


async def progress(conn: asyncpg.Connection, job_ids: Sequence[int]) -> dict[int, asyncpg.Record]:
    """Unit counts per state, rows landed and last-minute finishes, per job."""
    rows = await conn.fetch(PROGRESS, list(job_ids))
    return {r["job_id"]: r for r in rows}


async def cancel_job(conn: asyncpg.Connection, job_id: int) -> bool:
    """Cancel a job and its queued units at once; False if it had already ended."""
    async with conn.transaction():
        if await conn.fetchval(CANCEL_JOB, job_id) is None:
            return False
        await conn.execute(CANCEL_UNITS, job_id)
    return True


# ------------------------------------------------------------------- scoring runs

# Researchers see the runs of their own jobs and runs started outside any job (CLI).
SCORING_RUNS = """
SELECT r.id, r.model, r.model_version, r.params::text AS params, r.state,
       r.metrics::text AS metrics, r.durations::text AS durations, r.error, r.job_id,
       r.unit_id, r.started_at, r.finished_at
FROM scoring_runs r LEFT JOIN jobs j ON j.id = r.job_id
WHERE ($1::bigint IS NULL OR r.job_id IS NULL OR j.owner_key_id = $1)
  AND ($2::text IS NULL OR r.model = $2)
  AND ($3::bigint IS NULL OR r.id < $3)
  AND ($4::bigint IS NULL OR r.id = $4)
ORDER BY r.id DESC
LIMIT $5
"""


async def scoring_runs(
    conn: asyncpg.Connection,
    owner_key_id: int | None,
    model: str | None,
    before: int | None,
    run_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Scoring runs newest first, visible to ``owner_key_id`` (None: all)."""
    return list(await conn.fetch(SCORING_RUNS, owner_key_id, model, before, run_id, limit))


# ------------------------------------------------------------- client ids and fleet

ENSURE_FLEET = """
INSERT INTO fleet_state (id, budget_rps, max_budget_rps, updated_at)
VALUES (1, $1, $1, now() - interval '1 hour')
ON CONFLICT (id) DO UPDATE SET max_budget_rps = EXCLUDED.max_budget_rps,
    budget_rps = least(fleet_state.budget_rps, EXCLUDED.max_budget_rps)
"""

# The budget recovers additively since the last decrease (computed, not stored, so no
# process has to tick it); `updated_at` is the time of the last decrease.
FLEET_ADVICE = """
SELECT least(f.max_budget_rps,
             f.budget_rps + $1 * extract(epoch FROM now() - f.updated_at)) AS budget,
       CASE WHEN f.paused_until > now() THEN f.paused_until END AS paused_until,
       (SELECT count(*) FROM workers w
        WHERE w.last_seen_at > now() - make_interval(secs => $2)
          AND w.kinds && $3::text[]) AS alive,
       (SELECT c.value FROM client_ids c WHERE c.invalidated_at IS NULL
        ORDER BY c.discovered_at DESC, c.id DESC LIMIT 1) AS client_id
FROM fleet_state f WHERE f.id = 1
"""

# Live crawl leases per worker: the budget is shared in proportion to them.
LEASED_BY_WORKER = """
SELECT worker_id, count(*) AS units FROM work_units
WHERE state = 'leased' AND lease_expires_at > now() AND kind = ANY($1::text[])
GROUP BY worker_id
"""

FLEET_VIEW = """
SELECT least(f.max_budget_rps,
             f.budget_rps + $1 * extract(epoch FROM now() - f.updated_at)) AS budget,
       f.max_budget_rps,
       CASE WHEN f.paused_until > now() THEN f.paused_until END AS paused_until,
       f.throttles, f.blocks, f.block_level, f.block_reason, f.block_until,
       CASE WHEN f.block_until > now() THEN f.blocked_since END AS blocked_since,
       CASE WHEN f.discovery_until > now() THEN f.discovery_worker END AS discovery_worker,
       (SELECT c.value FROM client_ids c WHERE c.invalidated_at IS NULL
        ORDER BY c.discovered_at DESC, c.id DESC LIMIT 1) AS client_id
FROM fleet_state f WHERE f.id = 1
"""

LIVE_WORKERS = """
SELECT w.id, w.hostname, w.pid, w.kinds, w.started_at, w.last_seen_at,
       (SELECT count(*) FROM work_units u WHERE u.state = 'leased' AND u.worker_id = w.id
        AND u.lease_expires_at > now()) AS leased
FROM workers w WHERE w.last_seen_at > now() - make_interval(secs => $1)
ORDER BY w.id
"""

# A 429 halves the budget at most once per window (one congestion event, however many
# workers saw it) and pauses the fleet until the latest Retry-After.
THROTTLE = """
UPDATE fleet_state f SET
    budget_rps = CASE
        WHEN f.updated_at > now() - make_interval(secs => $4) THEN f.budget_rps
        ELSE greatest($3, $2 * least(f.max_budget_rps,
                                     f.budget_rps + $1 * extract(epoch FROM now() - f.updated_at)))
        END,
    updated_at = CASE WHEN f.updated_at > now() - make_interval(secs => $4) THEN f.updated_at
                      ELSE now() END,
    paused_until = CASE WHEN $5::float8 IS NULL THEN f.paused_until
                        ELSE greatest(coalesce(f.paused_until, now()),
                                      now() + make_interval(secs => $5::float8)) END,
    throttles = f.throttles + $6
WHERE f.id = 1
"""

CURRENT_CLIENT_ID = """
SELECT value FROM client_ids WHERE invalidated_at IS NULL
ORDER BY discovered_at DESC, id DESC LIMIT 1
"""

# Take the single discovery slot if nobody holds it (or its holder timed out) and no
# valid client_id exists; the row lock on fleet_state makes this single-flight. Never
# during a block pause (the homepage would be fetched from a blocked address), and at
# most one grant per rediscovery interval ($3), fleet-wide.
TAKE_DISCOVERY = """
UPDATE fleet_state SET discovery_worker = $1,
       discovery_until = now() + make_interval(secs => $2),
       last_discovery_at = CASE WHEN discovery_worker = $1 AND discovery_until >= now()
                                THEN last_discovery_at ELSE now() END
WHERE id = 1
  AND (discovery_worker IS NULL OR discovery_until < now() OR discovery_worker = $1)
  AND (discovery_worker = $1 AND discovery_until >= now()
       OR last_discovery_at IS NULL
       OR last_discovery_at <= now() - make_interval(secs => $3))
  AND (block_until IS NULL OR block_until <= now())
  AND NOT EXISTS (SELECT 1 FROM client_ids WHERE invalidated_at IS NULL)
RETURNING discovery_worker
"""

# Seconds until a discovery could be granted (the interval or a block pause), >= 0.
DISCOVERY_WAIT = """
SELECT greatest(0,
    extract(epoch FROM coalesce(last_discovery_at + make_interval(secs => $1), now()) - now()),
    extract(epoch FROM coalesce(block_until, now()) - now()))::float8
FROM fleet_state WHERE id = 1
"""

# One block report. Reports while a pause is running are the same block (every worker
# in flight meets it); one after the pause ended, within the reset window ($3), deepens
# it (the pause doubles); one later than that starts a new episode at the base pause.
BLOCK = """
WITH cur AS (
    SELECT CASE WHEN block_until > now() THEN 'same'
                WHEN block_until > now() - make_interval(secs => $3) THEN 'again'
                ELSE 'new' END AS what,
           block_level
    FROM fleet_state WHERE id = 1 FOR UPDATE
), nxt AS (
    SELECT what, CASE what WHEN 'same' THEN block_level
                           WHEN 'again' THEN least(block_level + 1, 30)
                           ELSE 0 END AS lvl
    FROM cur
)
UPDATE fleet_state f SET
    block_level = n.lvl,
    blocked_since = CASE WHEN n.what = 'new' THEN now() ELSE f.blocked_since END,
    block_until = CASE WHEN n.what = 'same' THEN f.block_until
                       ELSE now() + make_interval(secs => least($2, $1 * 2 ^ n.lvl)) END,
    paused_until = greatest(coalesce(f.paused_until, now()),
        CASE WHEN n.what = 'same' THEN f.block_until
             ELSE now() + make_interval(secs => least($2, $1 * 2 ^ n.lvl)) END),
    blocks = f.blocks + CASE WHEN n.what = 'same' THEN 0 ELSE 1 END,
    block_reason = CASE WHEN n.what = 'same' THEN f.block_reason ELSE $4 END
FROM nxt n
WHERE f.id = 1
RETURNING n.what, f.block_level, f.blocked_since, f.block_until,
          extract(epoch FROM f.block_until - now())::float8 AS wait_s
"""

CLIENT_ID_REFUSED = """
SELECT invalidated_at IS NOT NULL FROM client_ids WHERE value = $1
"""

REPORT_CLIENT_ID = """
INSERT INTO client_ids (value, source, reported_by, discovered_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (value) DO UPDATE SET invalidated_at = NULL, discovered_at = now(),
    source = EXCLUDED.source, reported_by = EXCLUDED.reported_by
"""

HOLDS_DISCOVERY = """
SELECT discovery_worker = $1 AND discovery_until >= now() FROM fleet_state WHERE id = 1
"""

CLEAR_DISCOVERY = """
UPDATE fleet_state SET discovery_worker = NULL, discovery_until = NULL WHERE id = 1
"""

INVALIDATE_CLIENT_ID = """
UPDATE client_ids SET invalidated_at = now() WHERE value = $1 AND invalidated_at IS NULL
"""


async def ensure_fleet(conn: asyncpg.Connection, budget_rps: float) -> None:
    """Create the fleet_state row, or apply a changed maximum budget."""
    await conn.execute(ENSURE_FLEET, budget_rps)


async def fleet_advice(
    conn: asyncpg.Connection,
    increase_rps_per_s: float,
    alive_s: float,
    crawl_kinds: Sequence[str] = CRAWL_KINDS,
) -> asyncpg.Record | None:
    """Current budget, pause, live crawling workers (who share it) and client_id."""
    return await conn.fetchrow(FLEET_ADVICE, increase_rps_per_s, alive_s, list(crawl_kinds))


async def leased_by_worker(
    conn: asyncpg.Connection, crawl_kinds: Sequence[str] = CRAWL_KINDS
) -> dict[str, int]:
    """Live crawl units leased, per worker holding any."""
    rows = await conn.fetch(LEASED_BY_WORKER, list(crawl_kinds))
    return {r["worker_id"]: int(r["units"]) for r in rows}


async def fleet_view(
    conn: asyncpg.Connection, increase_rps_per_s: float, alive_s: float
) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
    """The fleet row and the live workers."""
    head = await conn.fetchrow(FLEET_VIEW, increase_rps_per_s)
    workers = await conn.fetch(LIVE_WORKERS, alive_s)
    return head, list(workers)


async def throttle(
    conn: asyncpg.Connection,
    increase_rps_per_s: float,
    factor: float,
    floor_rps: float,
    window_s: float,
    retry_after_s: float | None,
    counted: bool = True,
) -> None:
    """Apply one reported 429 (or a block, not ``counted`` as a 429) to the fleet budget."""
    await conn.execute(
        THROTTLE, increase_rps_per_s, factor, floor_rps, window_s, retry_after_s, int(counted)
    )


async def current_client_id(conn: asyncpg.Connection) -> str | None:
    """The newest client_id not reported invalid."""
    value: str | None = await conn.fetchval(CURRENT_CLIENT_ID)
    return value


async def take_discovery(
    conn: asyncpg.Connection, worker_id: str, timeout_s: float, interval_s: float
) -> bool:
    """Try to become the fleet's one discoverer (at most one grant per ``interval_s``)."""
    return await conn.fetchval(TAKE_DISCOVERY, worker_id, timeout_s, interval_s) is not None


async def discovery_wait(conn: asyncpg.Connection, interval_s: float) -> float:
    """Seconds until a discovery could next be granted."""
    value = await conn.fetchval(DISCOVERY_WAIT, interval_s)
    return float(value or 0.0)


async def block(
    conn: asyncpg.Connection, base_s: float, max_s: float, reset_s: float, reason: str
) -> asyncpg.Record:
    """Record one block report; the row says whether it was new and the pause's end."""
    row: asyncpg.Record = await conn.fetchrow(BLOCK, base_s, max_s, reset_s, reason)
    return row


async def client_id_refused(conn: asyncpg.Connection, value: str) -> bool:
    """True when ``value`` is known and was reported invalid."""
    return bool(await conn.fetchval(CLIENT_ID_REFUSED, value))


async def holds_discovery(conn: asyncpg.Connection, worker_id: str) -> bool:
    """True while ``worker_id`` holds the fleet's discovery grant."""
    return bool(await conn.fetchval(HOLDS_DISCOVERY, worker_id))


async def report_client_id(
    conn: asyncpg.Connection, value: str, source: str, worker_id: str
) -> None:
    """Store a discovered client_id and free the discovery slot."""
    async with conn.transaction():
        await conn.execute(REPORT_CLIENT_ID, value, source, worker_id)
        await conn.execute(CLEAR_DISCOVERY)


async def invalidate_client_id(conn: asyncpg.Connection, value: str) -> None:
    """Mark a client_id invalid (idempotent)."""
    await conn.execute(INVALIDATE_CLIENT_ID, value)


# --------------------------------------------------------------------- keys, health

LOOKUP_KEY = "SELECT id, name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"

CREATE_KEY = """
INSERT INTO api_keys (name, role, key_hash, prefix) VALUES ($1, $2, $3, $4) RETURNING id
"""

LIST_KEYS = """
SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY id
"""

REVOKE_KEY = """
UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id
"""

ALEMBIC_REVISION = "SELECT version_num FROM alembic_version"

UNITS_BY_STATE = """
SELECT kind, state, count(*) AS n FROM work_units GROUP BY kind, state
"""


async def lookup_key(conn: asyncpg.Connection, key_hash: str) -> asyncpg.Record | None:
    """The live key with this hash."""
    return await conn.fetchrow(LOOKUP_KEY, key_hash)


async def create_key(
    conn: asyncpg.Connection, name: str, role: str, key_hash: str, prefix: str
) -> int:
    """Store a new key's hash; returns its id."""
    key_id: int = await conn.fetchval(CREATE_KEY, name, role, key_hash, prefix)
    return key_id


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every key (hash omitted)."""
    return list(await conn.fetch(LIST_KEYS))


async def revoke_key(conn: asyncpg.Connection, key_id: int) -> bool:
    """Revoke a key; False if unknown or already revoked."""
    return await conn.fetchval(REVOKE_KEY, key_id) is not None


async def alembic_revision(conn: asyncpg.Connection) -> str | None:
    """The database's migration revision (None if never migrated)."""
    try:
        value: str | None = await conn.fetchval(ALEMBIC_REVISION)
    except asyncpg.UndefinedTableError:
        return None
    return value


async def units_by_state(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Unit counts by kind and state (for /metrics)."""
    return list(await conn.fetch(UNITS_BY_STATE))


DEAD_UNITS = """
SELECT id, job_id, kind, attempt, last_error, updated_at
  FROM work_units
 WHERE state = 'dead'
 ORDER BY updated_at DESC, id DESC
 LIMIT $1
"""


async def dead_units(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """The most recent dead units with their last error (the dashboard's table)."""
    return list(await conn.fetch(DEAD_UNITS, limit))
