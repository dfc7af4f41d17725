"""Shared fixtures: real PostgreSQL, a migrated template cloned per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from runtime import database
from tests import dbutil


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    """DSN of the PostgreSQL server under test (embedded unless DATABASE_URL is set)."""
    return dbutil.server_dsn()


@pytest.fixture(scope="session")
async def template_db(admin_dsn: str) -> str:
    """Name of a template database migrated to head."""
    return await dbutil.ensure_template(admin_dsn)


@pytest.fixture
async def db_dsn(admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """DSN of a fresh migrated database for this test only."""
    dsn = await dbutil.clone(admin_dsn, template_db)
    yield dsn
    await dbutil.drop(admin_dsn, dsn)


@pytest.fixture
async def db(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to this test's database."""
    conn = await database.connect(db_dsn)
    yield conn
    await conn.close()
