"""Bulk, idempotent landing of records into PostgreSQL.

A batch of new rows is ``COPY``'d straight into its table. A batch holding a row the
table already has is ``COPY``'d into a per-connection temporary staging table (no
indexes, so the copy is cheap) and moved into the target with one ``INSERT … SELECT …
ON CONFLICT``.
Tables with a primary key are upserted (a changed row is updated, an identical one is
left alone); tables keyed by a unique constraint only (follow, repost and like events)
ignore rows they already hold. Either way, landing the same batch twice leaves the
same table as landing it once.

Call :func:`write_rows` inside ``async with conn.transaction():`` to land several tables
of one work unit atomically; on its own it runs in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy import Table, UniqueConstraint

from schemas.errors import DatabaseError, InputError

STAGE_BUFFERS = "256MB"


@dataclass(frozen=True)
class ConflictPolicy:
    """How a table absorbs rows it already holds."""

    key: tuple[str, ...]
    update: tuple[str, ...]

    @property
    def do_nothing(self) -> bool:
        """True when existing rows are kept as they are."""
        return not self.update


@cache
def policy_for(table: Table) -> ConflictPolicy:
    """The conflict policy of ``table``: upsert on its primary key, else ignore duplicates."""
    pk = tuple(c.name for c in table.primary_key.columns)
    if pk:
        update = tuple(c.name for c in table.columns if c.name not in pk)
        return ConflictPolicy(pk, update)
    uniques = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    if not uniques:
        raise InputError(f"table {table.name} has no key: its writes could not be idempotent")
    return ConflictPolicy(tuple(c.name for c in uniques[0].columns), ())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stage_name(table: Table) -> str:
    return f"_stage_{table.name}"


@cache
def _insert_sql(table: Table, columns: tuple[str, ...]) -> str:
    policy = policy_for(table)
    cols = ", ".join(_quote(c) for c in columns)
    key = ", ".join(_quote(c) for c in policy.key)
    target = _quote(table.name)
    stage = _quote(_stage_name(table))
    if policy.do_nothing:
        return f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING"
    updated = [c for c in columns if c in policy.update]
    if not updated:
        return (
            f"INSERT INTO {target} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM {stage} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
    sets = ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in updated)
    old = ", ".join(f"{target}.{_quote(c)}" for c in updated)
    new = ", ".join(f"EXCLUDED.{_quote(c)}" for c in updated)
    # DISTINCT ON: one INSERT may not touch a row twice; the batch's last copy wins.
    return (
        f"INSERT INTO {target} ({cols}) "
        f"SELECT DISTINCT ON ({key}) {cols} FROM {stage} ORDER BY {key}, ctid DESC "
        f"ON CONFLICT ({key}) DO UPDATE SET {sets} "
        f"WHERE ({old}) IS DISTINCT FROM ({new})"
    )


def _columns_of(table: Table, rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    columns = tuple(rows[0].keys())
    known = set(table.columns.keys())
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise InputError(f"{table.name}: unknown column(s) {', '.join(sorted(unknown))}")
    missing = [c for c in policy_for(table).key if c not in columns]
    if missing:
        raise InputError(f"{table.name}: rows lack key column(s) {', '.join(missing)}")
    return columns


def _odd_row(table: Table, rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...]) -> str:
    for i, row in enumerate(rows):
        if len(row) != len(columns) or any(c not in row for c in columns):
            return f"{table.name}: row {i} has columns other than row 0's"
    raise AssertionError("unreachable: a row failed the layout")


def _as_records(
    table: Table, rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    # A C-level itemgetter per row instead of a per-row, per-column check (a third of
    # landing's CPU for the crawler): equal lengths plus every column present means
    # every row has row 0's key set; only a failure walks the rows to name the odd one.
    width = len(columns)
    get = itemgetter(*columns)
    if all(len(row) == width for row in rows):
        try:
            if width == 1:
                return [(get(row),) for row in rows]
            return [get(row) for row in rows]
        except KeyError:
            pass
    raise InputError(_odd_row(table, rows, columns))


@cache
def _stage_sql(table: Table) -> str:
    # Keep a batch's staging rows in memory (the default 8 MB spills a 100,000-row batch
    # to disk). PostgreSQL only honours this before the session's first temporary table,
    # and ignores it afterwards, so setting it every time is harmless. The table lives
    # as long as the connection (created once) and every commit empties it, in place:
    # cheaper than a TRUNCATE per batch, which gives the table a new file each time.
    return (
        f"SET temp_buffers = '{STAGE_BUFFERS}'; "
        f"CREATE TEMP TABLE IF NOT EXISTS {_quote(_stage_name(table))} "
        f"(LIKE {_quote(table.name)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


# Tables whose last direct COPY hit a row they already held: how many more batches go
# through the staging table before a direct COPY is tried again.
_STAGED_AFTER_CONFLICT = 32
_staged_for: dict[str, int] = {}


async def _land(
    conn: asyncpg.Connection,
    table: Table,
    columns: tuple[str, ...],
    records: Sequence[tuple[Any, ...]],
    *,
    shared: bool,
) -> str:
    # Most batches are new rows (a first crawl of an id range, a new list): COPY them
    # straight into the table, which costs PostgreSQL under half of staging them and
    # upserting. A batch holding a key the table has (or holding one twice) fails as a
    # whole, rolls back to its savepoint and takes the upsert below, whose result is
    # the same; after such a conflict the table's next batches go straight there.
    if _staged_for.get(table.name, 0) <= 0:
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(table.name, records=records, columns=list(columns))
        except asyncpg.UniqueViolationError:
            _staged_for[table.name] = _STAGED_AFTER_CONFLICT
        else:
            return f"COPY {len(records)}"
    else:
        _staged_for[table.name] -= 1
    stage = _stage_name(table)
    await conn.execute(_stage_sql(table))  # one round trip for both statements
    await conn.copy_records_to_table(stage, records=records, columns=list(columns))
    status: str = await conn.execute(_insert_sql(table, columns))
    if shared:
        # The caller's transaction goes on: a second landing into this table before
        # its commit must not move these rows again.
        await conn.execute(f"DELETE FROM {_quote(stage)}")
    return status


def lay_out(
    table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """``rows`` (mappings with the same keys) as records: their columns and the tuples.

    Raises :class:`InputError` naming the table and column when the rows do not fit.
    """
    columns = _columns_of(table, rows)
    return columns, _as_records(table, rows, columns)


async def write_rows(
    conn: asyncpg.Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Land ``rows`` (mappings with the same keys) into ``table``; returns rows changed.

    Raises :class:`InputError` naming the table and column when the rows do not fit,
    in which case nothing is written.
    """
    if not rows:
        return 0
    return await write_records(conn, table, *lay_out(table, rows))


async def write_records(
    conn: asyncpg.Connection,
    table: Table,
    columns: tuple[str, ...],
    records: Sequence[tuple[Any, ...]],
) -> int:
    """Like :func:`write_rows` for records already laid out as tuples in ``columns`` order."""
    if not records:
        return 0
    try:
        if conn.is_in_transaction():
            # Part of the caller's transaction (a unit's batch, which rolls back whole
            # on any error): no savepoint of its own.
            status = await _land(conn, table, columns, records, shared=True)
        else:
            async with conn.transaction():
                status = await _land(conn, table, columns, records, shared=False)
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise InputError(f"{table.name}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"landing rows in {table.name} failed: {exc}") from exc
    except (TypeError, ValueError) as exc:  # the driver's encoding of a wrong Python type
        raise InputError(f"{table.name}: {exc}") from exc
    return int(status.rsplit(" ", 1)[-1])
