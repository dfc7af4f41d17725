"""Stream a ``reporting`` view to CSV, JSON lines or Parquet without loading it whole.

CSV is PostgreSQL's own ``COPY … TO STDOUT (FORMAT csv, HEADER)``, streamed to the
file by asyncpg: times in ISO 8601 UTC (the session's time zone is set to UTC),
booleans ``t``/``f``, arrays as ``{…}``, JSON as its text. JSON lines and Parquet read
a server-side cursor in batches; each batch is written and dropped. Either way memory
stays flat however large the view is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import BigInteger, Boolean, DateTime, Double, Integer
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from runtime import database
from schemas.errors import InputError
from schemas.views import REPORTING_SCHEMA, VIEW_NAMES, reporting_metadata

Format = Literal["csv", "jsonl", "parquet"]


def _arrow_type(sa_type: Any) -> pa.DataType:
    if isinstance(sa_type, ARRAY):
        return pa.list_(_arrow_type(sa_type.item_type))
    if isinstance(sa_type, BigInteger):
        return pa.int64()
    if isinstance(sa_type, Integer):
        return pa.int32()
    if isinstance(sa_type, Double):
        return pa.float64()
    if isinstance(sa_type, Boolean):
        return pa.bool_()
    if isinstance(sa_type, DateTime):
        return pa.timestamp("us", tz="UTC")
    return pa.string()  # text, and JSON written as its text


def arrow_schema(view: str) -> pa.Schema:
    """The Arrow schema of a reporting view."""
    table = reporting_metadata.tables[f"{REPORTING_SCHEMA}.{view}"]
    return pa.schema([(c.name, _arrow_type(c.type)) for c in table.columns])


def _json_columns(view: str) -> set[str]:
    table = reporting_metadata.tables[f"{REPORTING_SCHEMA}.{view}"]
    return {c.name for c in table.columns if isinstance(c.type, JSONB)}


def check_view(view: str) -> None:
    """Raise :class:`InputError` unless ``view`` is a reporting view."""
    if view not in VIEW_NAMES:
        raise InputError(f"unknown view {view!r}; views are: {', '.join(VIEW_NAMES)}")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _batches(conn: asyncpg.Connection, view: str, batch: int) -> Any:
    rows: list[asyncpg.Record] = []
    async with conn.transaction():
        async for record in conn.cursor(
            f'SELECT * FROM {REPORTING_SCHEMA}."{view}"', prefetch=batch
        ):
            rows.append(record)
            if len(rows) >= batch:
                yield rows
                rows = []
    if rows:
        yield rows


def _columnar(rows: list[asyncpg.Record], names: list[str]) -> Iterator[list[Any]]:
    for i in range(len(names)):
        yield [r[i] for r in rows]


async def export_view(dsn: str, view: str, fmt: Format, out: Path, *, batch: int = 10_000) -> int:
    """Write every row of reporting view ``view`` to ``out``; returns the row count."""
    check_view(view)
    json_cols = _json_columns(view)
    schema = arrow_schema(view)
    names = schema.names
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    async with database.connection(dsn) as conn:
        if fmt == "parquet":
            with pq.ParquetWriter(str(out), schema) as writer:
                async for rows in _batches(conn, view, batch):
                    columns = list(_columnar(rows, names))
                    writer.write_batch(
                        pa.RecordBatch.from_arrays(
                            [
                                pa.array(col, type=schema.field(i).type)
                                for i, col in enumerate(columns)
                            ],
                            schema=schema,
                        )
                    )
                    count += len(rows)
            return count
        if fmt == "csv":
            await conn.execute("SET TIME ZONE 'UTC'")
            status = await conn.copy_from_query(
                f'SELECT * FROM {REPORTING_SCHEMA}."{view}"', output=out, format="csv", header=True
            )
            return int(status.split()[-1])  # "COPY <rows>"
        with out.open("w", encoding="utf-8") as fh:
            async for rows in _batches(conn, view, batch):
                for r in rows:
                    item = dict(zip(names, [_plain(v) for v in r.values()], strict=True))
                    for col in json_cols:
                        if isinstance(item[col], str):
                            item[col] = json.loads(item[col])
                    fh.write(json.dumps(item, default=str) + "\n")
                count += len(rows)
    return count
