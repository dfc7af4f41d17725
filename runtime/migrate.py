"""Run Alembic programmatically on a :class:`~runtime.database.DatabaseTarget`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(sqlalchemy_url: str) -> Config:
    """An Alembic config pointing at our migrations and ``sqlalchemy_url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest revision of the migration chain."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    assert head is not None
    return head


def current_revision(sync_conn: Connection) -> str | None:
    """The revision a database is at (None when never migrated); use with ``run_sync``."""
    return MigrationContext.configure(sync_conn).get_current_revision()


def upgrade(sqlalchemy_url: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(sqlalchemy_url), revision)


def downgrade(sqlalchemy_url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    command.downgrade(alembic_config(sqlalchemy_url), revision)
