"""Test databases: one migrated template per session, cloned per test.

``DATABASE_URL`` (when set) names the server to use; otherwise an embedded PostgreSQL
is started in ``SOUNDFLEET_TEST_PGDATA`` (default ``.pytest_pgdata`` in the checkout).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from runtime import database
from runtime.migrate import MIGRATIONS_DIR, upgrade
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _embedded_settings() -> Settings:
    root = Path(os.environ.get("SOUNDFLEET_TEST_PGDATA", ROOT / ".pytest_pgdata"))
    return Settings(data_dir=root, database_url=None)


def server_dsn() -> str:
    """The admin DSN of the server the tests use (external or embedded)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return database.parse_database_url(url)
    return database.start_embedded(_embedded_settings())


def embedded_pgdata() -> Path | None:
    """The data directory of the embedded test server, None when DATABASE_URL is used."""
    if os.environ.get("DATABASE_URL"):
        return None
    return database.embedded_pgdata(_embedded_settings())


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` on the same server."""
    return make_url(dsn).set(database=name).render_as_string(hide_password=False)


def _migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIR.rglob("*.py")):
        digest.update(path.read_bytes())
    schemas_dir = ROOT / "schemas"
    for path in sorted(schemas_dir.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


async def _exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def ensure_template(admin_dsn: str) -> str:
    """Create (once per schema version) a migrated template database; return its name."""
    name = f"sf_tmpl_{_migrations_fingerprint()}"
    async with database.connection(admin_dsn) as conn:
        # Serialize concurrent test sessions creating the same template.
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", name)
        try:
            if not await _exists(conn, name):
                building = f"{name}_building_{uuid.uuid4().hex[:6]}"
                await conn.execute(f'CREATE DATABASE "{building}"')
                dsn = with_database(admin_dsn, building)
                url = make_url(dsn).set(drivername="postgresql+asyncpg")
                await asyncio.to_thread(upgrade, url.render_as_string(hide_password=False))
                await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                await conn.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE true')
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
    return name


async def clone(admin_dsn: str, template: str, prefix: str = "sf_t") -> str:
    """A fresh database cloned from ``template``; returns its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with database.connection(admin_dsn) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return with_database(admin_dsn, name)


async def create_empty(admin_dsn: str, prefix: str = "sf_e") -> str:
    """A fresh, empty (unmigrated) database; returns its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with database.connection(admin_dsn) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(admin_dsn, name)


async def drop(admin_dsn: str, dsn: str) -> None:
    """Drop the database ``dsn`` names, disconnecting whoever still uses it."""
    name = make_url(dsn).database
    async with database.connection(admin_dsn) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
