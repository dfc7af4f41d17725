"""``soundfleet db up|down|migrate|status|dictionary``: the database's life cycle."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from runtime import database
from runtime.migrate import head_revision, upgrade
from schemas.errors import DatabaseError
from schemas.settings import Settings
from schemas.tables import metadata


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` command group."""
    db = sub.add_parser("db", help="start, stop, migrate and inspect the database")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start the embedded PostgreSQL and print its URL")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop the embedded PostgreSQL")
    down.set_defaults(handler=_down)
    mig = actions.add_parser("migrate", help="migrate the configured database to head")
    mig.set_defaults(handler=_migrate)
    st = actions.add_parser("status", help="print the revision and each table's row count")
    st.set_defaults(handler=_status)
    dic = actions.add_parser(
        "dictionary", help="print the reporting schema's data dictionary (Markdown)"
    )
    dic.add_argument("--out", type=Path, help="write it to this file instead")
    dic.set_defaults(handler=_dictionary)


def _up(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.database_url:
        target = database.resolve(settings)
        print(f"DATABASE_URL is set; using {target.describe()} (nothing to start)")
        return 0
    print(database.start_embedded(settings))
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = Settings()
    stopped = database.stop_embedded(settings)
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


async def _check_reachable(target: database.DatabaseTarget, timeout: float) -> None:
    async with database.connection(target.dsn, timeout=timeout) as conn:
        await conn.execute("SELECT 1")


def migrate_target(target: database.DatabaseTarget, timeout: float = 10.0) -> None:
    """Check ``target`` answers, then migrate it to head; errors are one line."""
    asyncio.run(_check_reachable(target, timeout))
    try:
        upgrade(target.sqlalchemy_url.render_as_string(hide_password=False))
    except (OperationalError, DBAPIError, OSError) as exc:
        raise database.explain_connect_error(target.dsn, getattr(exc, "orig", exc)) from exc


def _migrate(args: argparse.Namespace) -> int:
    settings = Settings()
    target = database.resolve(settings)
    migrate_target(target, settings.db_connect_timeout_s)
    print(f"migrated {target.describe()} to {head_revision()}")
    return 0


async def table_counts(target: database.DatabaseTarget) -> tuple[str | None, dict[str, int]]:
    """The database's Alembic revision and the row count of every table."""
    from runtime.migrate import current_revision

    engine = database.create_engine(target, pool_size=1)
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(current_revision)
            counts: dict[str, int] = {}
            if revision is not None:
                for table in metadata.sorted_tables:
                    counts[table.name] = (
                        await conn.execute(select(func.count()).select_from(table))
                    ).scalar_one()
    except (OperationalError, DBAPIError, OSError) as exc:
        raise database.explain_connect_error(target.dsn, getattr(exc, "orig", exc)) from exc
    finally:
        await engine.dispose()
    return revision, counts


def _status(args: argparse.Namespace) -> int:
    settings = Settings()
    target = database.resolve(settings)
    asyncio.run(_check_reachable(target, settings.db_connect_timeout_s))
    revision, counts = asyncio.run(table_counts(target))
    head = head_revision()
    print(f"database: {target.describe()} ({'embedded' if target.embedded else 'external'})")
    state = "at head" if revision == head else f"head is {head}"
    print(f"revision: {revision or 'none (not migrated)'} ({state})")
    for name, count in counts.items():
        print(f"  {name:<20} {count:>12,}")
    if revision is None:
        raise DatabaseError("the database is not migrated: run `soundfleet db migrate`")
    return 0


async def _read_dictionary(dsn: str, timeout: float) -> str:
    from soundfleet.dictionary import markdown, read_catalog

    async with database.connection(dsn, timeout=timeout) as conn:
        views = await read_catalog(conn)
    if not views:
        raise DatabaseError("the database has no reporting views: run `soundfleet db migrate`")
    return markdown(views)


def _dictionary(args: argparse.Namespace) -> int:
    settings = Settings()
    target = database.resolve(settings)
    text = asyncio.run(_read_dictionary(target.dsn, settings.db_connect_timeout_s))
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0
