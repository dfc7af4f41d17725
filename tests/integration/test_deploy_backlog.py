"""The KEDA backlog query, run as the read-only role the manifests create, on a real database.

The role is made by the very SQL in ``k8s/database/cloudnative-pg/cluster.yaml`` (renamed
per test, because roles are server-wide) plus what CloudNativePG's managed-role
reconciler does with ``login``/``passwordSecret``; the query is the one in
``k8s/addons/keda/scaledobject.yaml``.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import asyncpg
import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "k8s" / "database" / "cloudnative-pg" / "cluster.yaml"
SCALED = ROOT / "k8s" / "addons" / "keda" / "scaledobject.yaml"


def keda_trigger() -> dict[str, str]:
    with SCALED.open() as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    metadata: dict[str, str] = scaled["spec"]["triggers"][0]["metadata"]
    return metadata


def role_sql(role: str) -> list[str]:
    with CLUSTER.open() as f:
        cluster = yaml.safe_load(f)
    statements: list[str] = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    return [s.replace("soundfleet_backlog", role) for s in statements]


@pytest.fixture
async def backlog_role(db_dsn: str) -> tuple[str, str]:
    role = f"sf_backlog_{uuid.uuid4().hex[:10]}"
    password = secrets.token_hex(16)
    admin = await asyncpg.connect(db_dsn)
    try:
        for statement in role_sql(role):
            await admin.execute(statement)
        # What the managed-role reconciler does for login: true + passwordSecret.
        await admin.execute(f"ALTER ROLE {role} LOGIN CONNECTION LIMIT 4 PASSWORD '{password}'")
    finally:
        await admin.close()
    dsn = make_url(db_dsn).set(username=role, password=password)
    yield role, dsn.render_as_string(hide_password=False)
    admin = await asyncpg.connect(db_dsn)
    try:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await admin.close()


async def test_backlog_query_counts_due_and_leased_units_as_the_reader(
    db_dsn: str, backlog_role: tuple[str, str]
) -> None:
    admin = await asyncpg.connect(db_dsn)
    try:
        job_id = await admin.fetchval(
            "INSERT INTO jobs (kind, spec) VALUES ('user_sweep', '{}') RETURNING id"
        )
        rows = [
            ("queued", 0.0),
            ("queued", 0.0),
            ("queued", 0.0),
            ("queued", 3600.0),  # scheduled (play_poll style): not backlog yet
            ("leased", 0.0),
            ("leased", 0.0),
            ("done", 0.0),
            ("dead", 0.0),
        ]
        for i, (state, delay) in enumerate(rows):
            await admin.execute(
                """INSERT INTO work_units (job_id, kind, payload, dedup_key, state, not_before,
                                           lease_expires_at)
                   VALUES ($1, 'user_range', '{}', $2, $3, now() + make_interval(secs => $4),
                           CASE WHEN $3 = 'leased' THEN now() + interval '1 minute' END)""",
                job_id,
                f"k{i}",
                state,
                delay,
            )
    finally:
        await admin.close()

    _, dsn = backlog_role
    reader = await asyncpg.connect(dsn)
    try:
        assert await reader.fetchval(keda_trigger()["query"]) == 5
        row = await reader.fetchrow("SELECT * FROM reporting.backlog")
        assert dict(row) == {
            "units_queued": 4,
            "units_due": 3,
            "units_leased": 2,
            "units_lease_expired": 0,
        }
    finally:
        await reader.close()


async def test_backlog_role_is_read_only_narrow_and_time_limited(
    backlog_role: tuple[str, str],
) -> None:
    _, dsn = backlog_role
    reader = await asyncpg.connect(dsn)
    try:
        assert await reader.fetchval("SHOW statement_timeout") == "2s"
        assert await reader.fetchval("SHOW transaction_read_only") == "on"
        # Only the reporting views: the queue tables themselves are out of reach...
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.fetchval("SELECT count(*) FROM public.work_units")
        # ... nothing can be written, not even a temporary table ...
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await reader.execute("CREATE TEMP TABLE t (x int)")
        # ... and a runaway query is cancelled by the role's statement timeout.
        with pytest.raises(asyncpg.QueryCanceledError):
            await reader.fetchval("SELECT pg_sleep(30)")
    finally:
        await reader.close()
