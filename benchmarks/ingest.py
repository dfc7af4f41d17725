"""Bulk sink vs a plain COPY: 1,000,000 follow events.

Prints ``{"rows", "sink_rows_per_s", "raw_copy_rows_per_s", "ratio", ...}``. Raw is a
plain ``COPY`` of the same records into an empty copy of ``follows`` with the same
indexes; the sink lands them through staging + ``INSERT … ON CONFLICT`` into the real,
empty ``follows`` table. Both run in this process, against the same server, in the same
batches, in alternating order over several rounds (the machine is noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from runtime import database
from runtime.sink import write_records
from schemas.settings import Settings
from schemas.tables import follows
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import drop_database, fresh_database

COLUMNS = ("follower_id", "followee_id", "event_time", "time_source", "fetched_at")


def make_records(n: int, seed: int = 7) -> list[tuple[object, ...]]:
    """``n`` follow events over a heavy-tailed graph, as tuples in COLUMNS order."""
    rng = np.random.default_rng(seed)
    followers = rng.integers(1, 2_000_000, n)
    followees = (rng.pareto(1.2, n) * 1000).astype(np.int64) % 2_000_000 + 1
    base = datetime(2020, 1, 1, tzinfo=UTC)
    seconds = rng.integers(0, 5 * 365 * 86400, n)
    fetched = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (int(a), int(b), base + timedelta(seconds=int(s)), "exact", fetched)
        for a, b, s in zip(followers, followees, seconds, strict=True)
    ]


async def _run(
    dsn: str, records: list[tuple[object, ...]], batch: int, rounds: int
) -> dict[str, object]:
    conn = await database.connect(dsn)
    try:
        sink_times: list[float] = []
        raw_times: list[float] = []
        for r in range(rounds):
            await conn.execute("TRUNCATE follows")
            await conn.execute("DROP TABLE IF EXISTS follows_raw")
            await conn.execute("CREATE TABLE follows_raw (LIKE follows INCLUDING ALL)")
            await conn.execute("CHECKPOINT")

            async def sink() -> float:
                t0 = time.perf_counter()
                for i in range(0, len(records), batch):
                    await write_records(conn, follows, COLUMNS, records[i : i + batch])
                return time.perf_counter() - t0

            async def raw() -> float:
                t0 = time.perf_counter()
                for i in range(0, len(records), batch):
                    async with conn.transaction():
                        await conn.copy_records_to_table(
                            "follows_raw", records=records[i : i + batch], columns=list(COLUMNS)
                        )
                return time.perf_counter() - t0

            if r % 2 == 0:
                sink_times.append(await sink())
                raw_times.append(await raw())
            else:
                raw_times.append(await raw())
                sink_times.append(await sink())
        landed = await conn.fetchval("SELECT count(*) FROM follows")
        again = sum(
            [
                await write_records(conn, follows, COLUMNS, records[i : i + batch])
                for i in range(0, min(len(records), batch * 2), batch)
            ]
        )
        await conn.execute("DROP TABLE IF EXISTS follows_raw")
        await conn.execute("TRUNCATE follows")
    finally:
        await conn.close()
    n = len(records)
    sink_s = float(np.median(sink_times))
    raw_s = float(np.median(raw_times))
    return {
        "rows": n,
        "distinct_rows_landed": landed,
        "rows_changed_by_relanding_two_batches": again,
        "batch": batch,
        "rounds": rounds,
        "sink_rows_per_s": round(n / sink_s),
        "raw_copy_rows_per_s": round(n / raw_s),
        "ratio": round(raw_s / sink_s, 3),
        "target_ratio": 0.6,
        "sink_seconds": [round(t, 2) for t in sink_times],
        "raw_seconds": [round(t, 2) for t in raw_times],
    }


def main() -> None:
    """Run the benchmark on a scratch database and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    target = database.resolve(settings)
    dsn = fresh_database(target.dsn, "sf_bench_ingest")
    try:
        migrate_target(database.DatabaseTarget(dsn, embedded=target.embedded))
        records = make_records(args.rows)
        result = asyncio.run(_run(dsn, records, args.batch, args.rounds))
        result["server"] = "embedded" if target.embedded else "DATABASE_URL"
        print(json.dumps(result))
    finally:
        drop_database(target.dsn, dsn)


if __name__ == "__main__":
    main()
