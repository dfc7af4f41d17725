"""``soundfleet demo``: a whole fleet on this machine, crawling a simulated world and scoring it.

It starts (or joins) the embedded PostgreSQL unless ``DATABASE_URL`` is set, creates a
fresh ``soundfleet_demo`` database there, starts the simulator, the coordinator and W
workers as child processes on free loopback ports, and drives them as a researcher
would, through the coordinator's API: a user sweep, a depth-2 network crawl from the
most-followed artists, their tracks with exact repost/like timelines, a play-count poll
of their newest tracks over 72 simulated hours, then the four scoring runs. It ends with
a summary (rows per table, throughput, retries and errors, each model against the
simulator's ground truth) and the report's plots. Ctrl-C stops every child.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy.engine import make_url

from runtime import database
from runtime.client import CoordinatorClient
from schemas.errors import SoundfleetError
from schemas.jobs import JobView
from schemas.settings import Settings
from soundfleet.cli_db import migrate_target, table_counts
from soundfleet.evaluate import evaluate_all
from soundfleet.fleet import Fleet, FleetSpec, scratch_database, start_fleet
from soundfleet.progress import watch

DEMO_DATABASE = "soundfleet_demo"
POLL_SIM_HOURS = 72
MAX_ARTISTS = 20_000


@dataclass
class DemoConfig:
    """What ``soundfleet demo`` was asked for."""

    users: int = 20_000
    workers: int = 2
    seed: int = 7
    out: Path = field(default_factory=lambda: Path("demo-out"))
    json: bool = False
    concurrency: int = 64
    time_scale: float = 3600.0  # one simulated hour per second: 72 h of polling in 72 s
    artists: int = 5
    poll_tracks: int = 24
    viral_threshold: int = 25


async def _top_artists(dsn: str, n: int) -> list[int]:
    async with database.connection(dsn) as conn:
        rows = await conn.fetch(
            "SELECT id FROM users WHERE track_count > 0 ORDER BY followers_count DESC, id LIMIT $1",
            n,
        )
    return [r["id"] for r in rows]


async def _newest_tracks(dsn: str, n: int) -> list[int]:
    """The most recent uploads crawled: their play counts are still moving."""
    async with database.connection(dsn) as conn:
        rows = await conn.fetch(
            "SELECT id FROM tracks WHERE public ORDER BY created_at DESC, id LIMIT $1", n
        )
    return [r["id"] for r in rows]


async def _phase(
    client: CoordinatorClient, console: Console, title: str, jobs: list[tuple[str, dict[str, Any]]]
) -> list[JobView]:
    console.rule(title)
    submitted = [await client.submit(kind, spec) for kind, spec in jobs]
    return await watch(client, [j.id for j in submitted], console=console)


async def drive(cfg: DemoConfig, fleet: Fleet, console: Console) -> dict[str, Any]:
    """Submit the demo's jobs phase by phase and wait for each phase to finish."""
    assert fleet.coordinator.url is not None
    finished: list[JobView] = []
    t0 = time.monotonic()
    async with CoordinatorClient(fleet.coordinator.url, fleet.researcher_key) as client:
        finished += await _phase(
            client,
            console,
            "user sweep",
            [
                ("user_sweep", {"id_from": 1, "id_to": cfg.users + 1, "chunk": 500}),
            ],
        )
        ranked = await _top_artists(fleet.dsn, MAX_ARTISTS)
        artists, more = ranked[: cfg.artists], ranked[cfg.artists :] or ranked[:1]
        if not artists:
            raise SoundfleetError("the sweep found no artist: nothing to crawl further")
        timelines = {"lists": ["reposters", "likers"], "timestamps": "exact"}
        finished += await _phase(
            client,
            console,
            "network and timelines",
            [
                # Followers only: a page-mode follow seen from both of its lists lands
                # twice with two page-bound times, which would read as a repeated follow.
                (
                    "network",
                    {"seeds": artists[:3], "depth": 2, "direction": "followers", "max_users": 3000},
                ),
                ("user_tracks", {"user_ids": artists, "then_timelines": timelines}),
                # Every other artist's tracks (no timelines): the fresh uploads to poll.
                ("user_tracks", {"user_ids": more}),
            ],
        )
        tracks = await _newest_tracks(fleet.dsn, cfg.poll_tracks)
        every_s = 3600.0 / cfg.time_scale
        if tracks:
            finished += await _phase(
                client,
                console,
                "play-count poll (72 simulated hours)",
                [
                    (
                        "play_poll",
                        {
                            "track_ids": tracks,
                            "every_s": max(every_s, 1.0),
                            "for_s": POLL_SIM_HOURS * 3600.0 / cfg.time_scale,
                        },
                    ),
                ],
            )
        finished += await _phase(
            client,
            console,
            "scoring",
            [
                ("score", {"model": "network", "params": {"artists": artists}}),
                ("score", {"model": "spam", "params": {}}),
                ("score", {"model": "virality", "params": {}}),
                ("score", {"model": "revisit", "params": {"window": "hourly"}}),
            ],
        )
    return {
        "jobs": finished,
        "seconds": time.monotonic() - t0,
        "artists": artists,
        "poll_tracks": tracks,
    }


def _summary_tables(console: Console, summary: dict[str, Any]) -> None:
    jobs = RichTable(title="jobs")
    for col in ("id", "kind", "state", "units", "rows", "retrying", "dead"):
        jobs.add_column(col)
    for j in summary["jobs"]:
        jobs.add_row(
            str(j["id"]),
            j["kind"],
            j["state"],
            str(j["units"]),
            f"{j['rows']:,}",
            str(j["retrying"]),
            str(j["dead"]),
        )
    console.print(jobs)
    rows = RichTable(title="rows per table")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for name, n in summary["tables"].items():
        if n:
            rows.add_row(name, f"{n:,}")
    console.print(rows)
    models = RichTable(title="models against the simulator's ground truth")
    models.add_column("model")
    models.add_column("metric")
    models.add_column("value", justify="right")
    for model, metrics in summary["evaluation"].items():
        for key, value in metrics.items():
            if isinstance(value, dict):  # one classifier of several (virality)
                for name, m in value.items():
                    models.add_row(
                        f"{model}/{name}",
                        f"precision · recall · F · fallout (n={m['n']}, {m['positives']} true)",
                        f"{m['precision']:.3f} · {m['recall']:.3f} · {m['f_measure']:.3f} · "
                        f"{m['fallout']:.3f}",
                    )
                continue
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            models.add_row(model, key, text)
    console.print(models)
    console.print(
        f"crawl + scoring took {summary['seconds']:.0f} s; "
        f"{summary['throughput_rows_per_s']:,.0f} rows/s landed; report: {summary['report']}"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(cfg: DemoConfig) -> int:
    """Run the demo end to end; 0 only if every job finished ``done``."""
    from soundfleet.report import write_report

    console = Console(stderr=True)
    settings = Settings()
    target = database.resolve(settings)
    console.print(
        f"database: {target.describe()} ({'embedded' if target.embedded else 'external'})"
    )
    dsn = scratch_database(target.dsn, DEMO_DATABASE)
    migrate_target(database.DatabaseTarget(dsn, embedded=target.embedded))
    cfg.out.mkdir(parents=True, exist_ok=True)
    # SIGTERM (a supervisor, `timeout`) must clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    spec = FleetSpec(
        seed=cfg.seed,
        users=cfg.users,
        workers=cfg.workers,
        concurrency=cfg.concurrency,
        time_scale=cfg.time_scale,
        scorers=1,
    )
    fleet = start_fleet(dsn, spec, cfg.out / "logs")
    try:
        console.print(
            f"simulator {fleet.simulator.url} · coordinator {fleet.coordinator.url} · "
            f"{len(fleet.workers)} workers · logs in {cfg.out / 'logs'}"
        )
        result = asyncio.run(drive(cfg, fleet, console))
    finally:
        fleet.stop()
    _, counts = asyncio.run(table_counts(database.DatabaseTarget(dsn, embedded=target.embedded)))
    evaluation = asyncio.run(
        evaluate_all(dsn, seed=cfg.seed, users=cfg.users, threshold=cfg.viral_threshold)
    )
    figures = write_report(
        dsn,
        cfg.out / "report",
        {
            "world": f"simulator seed {cfg.seed}, {cfg.users:,} user ids",
            "run by": "soundfleet demo",
        },
    )
    platform_rows = sum(
        counts.get(t, 0)
        for t in (
            "users",
            "user_ids_gone",
            "tracks",
            "follows",
            "reposts",
            "likes",
            "track_stats",
            "web_profiles",
        )
    )
    jobs: list[JobView] = result["jobs"]
    summary: dict[str, Any] = {
        "database": make_url(dsn).render_as_string(hide_password=True),
        "seconds": round(result["seconds"], 1),
        "throughput_rows_per_s": platform_rows / max(result["seconds"], 1e-9),
        "jobs": [
            {
                "id": j.id,
                "kind": j.kind,
                "state": j.state,
                "units": j.progress.total,
                "rows": j.progress.rows_landed,
                "retrying": j.progress.retrying,
                "dead": j.progress.dead,
                "failed": j.progress.failed,
            }
            for j in jobs
        ],
        "tables": counts,
        "evaluation": evaluation,
        "report": str(cfg.out / "report" / "index.html"),
        "figures": {
            f.name: (str(f.path) if f.path else f"not drawn: {f.missing}") for f in figures
        },
    }
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if cfg.json:
        print(json.dumps(summary, default=str))
    else:
        _summary_tables(Console(width=None if sys.stdout.isatty() else 120), summary)
    return 0 if all(j.state == "done" for j in jobs) else 1
