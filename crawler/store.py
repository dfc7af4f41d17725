"""All of the crawler's SQL: landing batches through the bulk sink, and two lookups.

A :class:`Batch` holds the rows of one checkpoint of one unit, for several tables; it
is landed in one transaction, so a unit is never half-landed at a checkpoint: either
all of the batch's rows are committed (and the cursor may move past them) or none is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import JSONB

from crawler.errors import StaleLease
from runtime import database
from runtime.sink import lay_out, policy_for, write_records
from schemas import tables
from schemas.errors import DatabaseError

Row = dict[str, Any]
Record = tuple[Any, ...]

# Landing order inside a transaction: entities before the events that mention them.
_ORDER = (
    tables.users,
    tables.user_ids_gone,
    tables.web_profiles,
    tables.tracks,
    tables.follows,
    tables.reposts,
    tables.likes,
    tables.track_stats,
    tables.skipped_items,
)

# Recently landed users not known gone, newest first (the 404 guard's witnesses).
_KNOWN_LIVE = """
SELECT u.id FROM users u
WHERE NOT (u.id = ANY($2::bigint[]))
  AND NOT EXISTS (SELECT 1 FROM user_ids_gone g WHERE g.id = u.id AND g.checked_at > u.fetched_at)
ORDER BY u.fetched_at DESC LIMIT $1
"""


_DELETE_PROFILES = "DELETE FROM web_profiles WHERE user_id = ANY($1::bigint[])"

# The landing transaction's fence: the unit is still leased to this attempt and the
# lease has not run out. FOR SHARE holds a re-claim (an UPDATE of the row) until the
# batch commits, so a batch is either landed under a live lease or not at all.
_FENCE = """
SELECT 1 FROM work_units
WHERE id = $1 AND attempt = $2 AND state = 'leased' AND lease_expires_at > now()
FOR SHARE
"""


# A worker frozen mid-transaction (SIGSTOP, a long pause, a partition) keeps its row
# locks, and every landing or lease update that touches those rows waits for it. The
# server ends such a session instead: a landing takes milliseconds, never this long.
_SESSION = {
    "idle_in_transaction_session_timeout": "20s",
    "statement_timeout": "60s",
    # who is who in pg_stat_activity (and in the benchmarks' CPU split)
    "application_name": "soundfleet-worker",
}


class Fence(NamedTuple):
    """The lease a batch is landed under: its unit and attempt (the lease token)."""

    unit_id: int
    token: int


class Batch:
    """Rows to land together, grouped by table."""

    def __init__(self) -> None:
        self._rows: dict[Table, list[Row]] = defaultdict(list)
        # Rows already laid out as tuples, with their columns (see add_records).
        self._records: dict[Table, tuple[tuple[str, ...], list[Record]]] = {}
        # Users whose web profiles this batch replaces (links removed since are deleted).
        self.profiles_of: set[int] = set()

    def add(self, table: Table, row: Row) -> None:
        """Queue one row for ``table``."""
        self._rows[table].append(row)

    def extend(self, table: Table, rows: Iterable[Row]) -> None:
        """Queue rows for ``table``."""
        self._rows[table].extend(rows)

    def add_records(self, table: Table, columns: tuple[str, ...], records: list[Record]) -> None:
        """Queue rows for ``table`` laid out as tuples in ``columns`` order.

        The bulk path of a sweep: no dict per row, and tuples of plain values are
        dropped by the garbage collector's tracking instead of re-scanned while a
        batch waits to land.
        """
        held = self._records.setdefault(table, (columns, []))
        if held[0] != columns:
            raise ValueError(f"{table.name}: records in two column layouts")
        held[1].extend(records)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values()) + sum(
            len(recs) for _, recs in self._records.values()
        )

    def laid_out(self) -> list[tuple[Table, tuple[str, ...], list[Record]]]:
        """Every non-empty table's rows as records, in landing order: one way to land.

        Rows added as mappings are laid out here (:func:`runtime.sink.lay_out`, which
        names a row that does not fit); rows added as records go as they are.
        """
        order = {t.name: i for i, t in enumerate(_ORDER)}
        out = [(t, *lay_out(t, rows)) for t, rows in self._rows.items() if rows]
        out += [(t, cols, recs) for t, (cols, recs) in self._records.items() if recs]
        return sorted(out, key=lambda item: order.get(item[0].name, len(order)))

    def counts(self) -> dict[str, int]:
        """Rows queued per table name."""
        counts = {t.name: len(r) for t, r in self._rows.items() if r}
        for t, (_, recs) in self._records.items():
            if recs:
                counts[t.name] = counts.get(t.name, 0) + len(recs)
        return counts


class RowStore(Protocol):
    """What the handlers need of a store: :class:`Store`, or :class:`MemoryStore`."""

    async def land(self, batch: Batch, fence: Fence | None = None) -> int:
        """Land ``batch`` in one transaction (under ``fence``'s lease); returns rows written."""
        ...

    async def listed_users(self, user_id: int, direction: str) -> list[int]:
        """Users already landed in ``user_id``'s follower or following list."""
        ...

    async def user_track_ids(self, user_id: int) -> list[int]:
        """Tracks already landed for ``user_id``."""
        ...

    async def known_live_users(self, limit: int, exclude: set[int]) -> list[int]:
        """Up to ``limit`` users landed recently and not marked gone since."""
        ...


class MemoryStore:
    """The in-memory twin of :class:`Store`: keeps landed rows in lists, per table.

    Rows are checked as the database would check them (known columns, key columns
    present), so a handler that builds a bad row fails here as it would on PostgreSQL.
    Used by the replay suite (``benchmarks.replay``) and by tests that need no server.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[Row]] = defaultdict(list)

    async def land(self, batch: Batch, fence: Fence | None = None) -> int:
        """Check and keep every row of ``batch``; returns how many (no leases here)."""
        written = 0
        for table, columns, records in batch.laid_out():
            known = set(table.columns.keys())
            # jsonb goes to PostgreSQL as JSON text: anything else fails there.
            json_columns = [c.name for c in table.columns if isinstance(c.type, JSONB)]
            key = policy_for(table).key
            as_dicts = [dict(zip(columns, r, strict=True)) for r in records]
            for row in as_dicts:
                unknown = set(row) - known
                missing = [c for c in key if row.get(c) is None]
                if unknown or missing:
                    raise DatabaseError(
                        f"{table.name}: row with unknown columns {sorted(unknown)} or "
                        f"missing key columns {missing}"
                    )
                for name in json_columns:
                    if row.get(name) is not None and not isinstance(row[name], str):
                        raise DatabaseError(
                            f"{table.name}.{name}: jsonb needs JSON text, got "
                            f"{type(row[name]).__name__}"
                        )
            self.rows[table.name].extend(as_dicts)
            written += len(as_dicts)
        return written

    async def listed_users(self, user_id: int, direction: str) -> list[int]:
        """Users kept in ``user_id``'s follower or following list."""
        mine, other = (
            ("followee_id", "follower_id")
            if direction == "followers"
            else ("follower_id", "followee_id")
        )
        return sorted({r[other] for r in self.rows["follows"] if r[mine] == user_id})

    async def user_track_ids(self, user_id: int) -> list[int]:
        """Tracks kept for ``user_id``."""
        return sorted({r["id"] for r in self.rows["tracks"] if r["user_id"] == user_id})

    async def known_live_users(self, limit: int, exclude: set[int]) -> list[int]:
        """Users kept, newest first, not excluded."""
        seen = [r["id"] for r in reversed(self.rows["users"]) if r["id"] not in exclude]
        return list(dict.fromkeys(seen))[:limit]


class Store:
    """A small asyncpg pool landing batches and answering the crawler's lookups."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, size: int = 4) -> Store:
        """Connect a pool to ``dsn`` (errors become :class:`DatabaseError`)."""
        return cls(await database.create_pool(dsn, size=size, server_settings=_SESSION))

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    async def land(self, batch: Batch, fence: Fence | None = None) -> int:
        """Land every table of ``batch`` in one transaction; returns rows written.

        With ``fence``, the transaction first proves the lease is still live and this
        attempt's; if not, nothing is written and :class:`StaleLease` is raised (a
        worker frozen past its lease must not overwrite a fresher attempt's rows).
        """
        if not len(batch) and not batch.profiles_of:
            return 0
        written = 0
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if fence is not None and await conn.fetchval(_FENCE, *fence) is None:
                    raise StaleLease(
                        f"unit {fence.unit_id}: lease {fence.token} is no longer live; "
                        f"{len(batch)} rows refused"
                    )
                if batch.profiles_of:
                    await conn.execute(_DELETE_PROFILES, sorted(batch.profiles_of))
                for table, columns, records in batch.laid_out():
                    written += await write_records(conn, table, columns, records)
        except database.DRIVER_ERRORS as exc:
            raise DatabaseError(f"landing a batch failed: {exc}") from exc
        return written

    async def listed_users(self, user_id: int, direction: str) -> list[int]:
        """Users already landed in ``user_id``'s follower or following list."""
        if direction == "followers":
            sql = "SELECT DISTINCT follower_id FROM follows WHERE followee_id = $1"
        else:
            sql = "SELECT DISTINCT followee_id FROM follows WHERE follower_id = $1"
        return [int(r[0]) for r in await self._fetch(sql, user_id)]

    async def user_track_ids(self, user_id: int) -> list[int]:
        """Tracks already landed for ``user_id``."""
        return [
            int(r[0])
            for r in await self._fetch("SELECT id FROM tracks WHERE user_id = $1", user_id)
        ]

    async def known_live_users(self, limit: int, exclude: set[int]) -> list[int]:
        """Up to ``limit`` users landed recently and not marked gone since."""
        rows = await self._fetch(_KNOWN_LIVE, limit, sorted(exclude))
        return [int(r[0]) for r in rows]

    async def ping(self) -> None:
        """Raise :class:`DatabaseError` unless the database answers."""
        await self._fetch("SELECT 1")

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self._pool.acquire() as conn:
                records: list[asyncpg.Record] = await conn.fetch(sql, *args)
                return records
        except database.DRIVER_ERRORS as exc:
            raise DatabaseError(f"database query failed: {exc}") from exc
