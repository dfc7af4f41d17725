"""The SQL of the revisit model: read ``track_stats`` snapshots, shape ``revisit_fits`` rows.

The only module of :mod:`scoring.revisit` that knows table and column names. Writing is
done by :mod:`scoring.runs` (one transaction per run); this module only builds the rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from scoring.runs import ResultRows

FIT_COLUMNS: tuple[str, ...] = (
    "track_id",
    "window",
    "n_points",
    "n_shocks",
    "shocks",
    "period",
    "rmse",
    "audience_share",
    "revisit_share",
    "forecast",
    "error",
)


@dataclass(frozen=True)
class Snapshots:
    """One track's counter snapshots: epoch seconds and cumulative play counts."""

    track_id: int
    observed_at: NDArray[np.float64]
    playback_count: NDArray[np.float64]


async def read_snapshots(
    conn: asyncpg.Connection, track_ids: Sequence[int] | None, max_tracks: int | None
) -> list[Snapshots]:
    """Every snapshot of the chosen tracks (all tracks with snapshots by default)."""
    where = ""
    args: list[Any] = []
    if track_ids:
        where = " WHERE track_id = ANY($1::bigint[])"
        args.append(list(track_ids))
    # NULL counters stay NaN so the series builder can treat them as missing.
    rows = await conn.fetch(
        "SELECT track_id, extract(epoch FROM observed_at)::float8 AS t,"
        " playback_count::float8 AS c FROM track_stats" + where + " ORDER BY track_id, observed_at",
        *args,
    )
    out: list[Snapshots] = []
    i = 0
    while i < len(rows):
        tid = rows[i]["track_id"]
        j = i
        while j < len(rows) and rows[j]["track_id"] == tid:
            j += 1
        chunk = rows[i:j]
        out.append(
            Snapshots(
                track_id=int(tid),
                observed_at=np.array([r["t"] for r in chunk], dtype=np.float64),
                playback_count=np.array(
                    [np.nan if r["c"] is None else r["c"] for r in chunk], dtype=np.float64
                ),
            )
        )
        if max_tracks is not None and len(out) >= max_tracks:
            break
        i = j
    return out


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def fit_rows(records: Sequence[dict[str, Any]]) -> ResultRows:
    """``revisit_fits`` rows (JSON columns serialised) from per-track result dicts."""

    def row(r: dict[str, Any]) -> tuple[Any, ...]:
        return (
            r["track_id"],
            r["window"],
            r["n_points"],
            r.get("n_shocks"),
            _json(r.get("shocks")),
            _json(r.get("period")),
            r.get("rmse"),
            r.get("audience_share"),
            r.get("revisit_share"),
            _json(r.get("forecast")),
            r.get("error"),
        )

    return ResultRows(table="revisit_fits", columns=FIT_COLUMNS, records=[row(r) for r in records])
