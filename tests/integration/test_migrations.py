"""The migration chain matches the metadata, and goes down as well as up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from migrations.filters import include_object
from runtime import database
from runtime.migrate import downgrade, head_revision, upgrade
from schemas.tables import metadata
from schemas.views import READER_ROLE, VIEW_NAMES
from tests import dbutil


@pytest.fixture
async def empty_dsn(admin_dsn: str) -> AsyncIterator[str]:
    dsn = await dbutil.create_empty(admin_dsn)
    yield dsn
    await dbutil.drop(admin_dsn, dsn)


def _sa(dsn: str) -> str:
    return make_url(dsn).set(drivername="postgresql+asyncpg").render_as_string(False)


async def _diff(dsn: str) -> list[object]:
    engine = database.create_engine(database.DatabaseTarget(dsn, embedded=False), pool_size=1)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: object) -> list[object]:
                ctx = MigrationContext.configure(
                    sync_conn,  # type: ignore[arg-type]
                    opts={
                        "include_object": include_object,
                        "compare_type": True,
                        "compare_server_default": True,
                    },
                )
                return list(compare_metadata(ctx, metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def test_upgrade_matches_metadata_and_downgrade_works(empty_dsn: str) -> None:
    await asyncio.to_thread(upgrade, _sa(empty_dsn))
    assert await _diff(empty_dsn) == []

    async with database.connection(empty_dsn) as conn:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
        views = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.views WHERE table_schema='reporting'"
            )
        }
        assert views == set(VIEW_NAMES)

    await asyncio.to_thread(downgrade, _sa(empty_dsn))
    async with database.connection(empty_dsn) as conn:
        left = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        assert left == []
        assert not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'reporting'")


async def test_reader_role_sees_reporting_only(db) -> None:  # type: ignore[no-untyped-def]
    await db.execute("INSERT INTO users (id, username, fetched_at) VALUES (1, 'a', now())")
    await db.execute(f"SET ROLE {READER_ROLE}")
    try:
        assert await db.fetchval("SELECT count(*) FROM reporting.users") == 1
        with pytest.raises(Exception, match="permission denied"):
            await db.fetch("SELECT * FROM public.users")
        with pytest.raises(Exception, match="permission denied"):
            await db.execute("DELETE FROM reporting.users")
    finally:
        await db.execute("RESET ROLE")
