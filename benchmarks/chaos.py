"""Chaos: crawl with faults while killing workers, the coordinator and PostgreSQL, then
compare the database with the simulator's ground truth row by row.

The simulator runs with its clock frozen (``--time-scale 0``) so the truth is exactly
what a crawl can see, and with faults on: 5xx, malformed bodies, a per-client_id rate
limit that produces 429s, and client_id rotation. The jobs: a user sweep over every id,
a depth-2 follower crawl from the most-followed artists, and exact (``limit=1``)
repost/like timelines of the most-reposted tracks. While they run, a random worker is
SIGKILLed every ``--kill-every`` seconds and replaced, the coordinator is restarted once
and the embedded PostgreSQL once. At the end:

* ``users`` and ``user_ids_gone`` equal the truth's live and gone ids of the sweep range;
* reposts and likes of the timeline tracks equal the truth's events, times included;
* the followers lists crawled (page mode: times are page bounds) hold exactly the truth's
  distinct follower pairs;
* no unit is left leased, and dead units only where the truth says the user is gone.

With ``--profile real`` the simulator plays the real platform's failure modes too
(DataDome 403s for cookieless or bursting clients, per-IP blocks, 429s as plain text
without Retry-After, epoch-millisecond follower cursors, URN-only web-profiles): the
fleet must pause on each block instead of rediscovering, and still match the truth. The
summary then reports what the bot protection served (``bot``), the fleet's block
episodes and how many homepage fetches (rediscoveries) the fleet made.

Prints a JSON summary. ``python -m benchmarks.chaos`` is the full size (``make chaos``;
``make chaos-real`` the real-platform profile); the test suite runs :func:`run_chaos`
at a small size. On any failure the scratch database is kept and the summary says how
to open it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url

from runtime import database, processes
from runtime.client import CoordinatorClient
from schemas.coordinator import CoordinatorSettings
from schemas.errors import SoundfleetError
from schemas.settings import Settings
from simulator.world import World
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import (
    Fleet,
    FleetSpec,
    create_key,
    drop_database,
    fresh_database,
    start_fleet,
)


@dataclass(frozen=True)
class ChaosConfig:
    """Size and violence of a chaos run."""

    users: int = 100_000
    seed: int = 11
    workers: int = 3
    artists: int = 3
    max_users: int = 3_000
    timeline_tracks: int = 50
    kill_every_s: float = 10.0
    # This share of the kills is a SIGSTOP for sigstop_s instead: the worker wakes past
    # its leases with rows in hand, which the fenced landing must refuse.
    sigstop_share: float = 0.0
    sigstop_s: float = 10.0
    fault_5xx: float = 0.02
    fault_malformed: float = 0.01
    rate_limit: float = 1500.0
    rotate_client_id_s: float = 30.0
    restart_coordinator: bool = True
    # Every SIGKILL costs the units its victim held one attempt (their leases expire):
    # a run this violent needs more attempts than the default before a unit is dead.
    max_attempts: int = 40
    chunk: int = 200
    # Two units per worker at a time: a kill then costs two units an attempt, not eight.
    worker_args: tuple[str, ...] = ("--units", "2", "--no-web-profiles")
    lease_s: float = 10.0
    timeout_s: float = 1800.0
    depth: int = 2
    # The real platform's profile (see the module doc) and its knobs.
    profile: str = "default"
    bot_burst: float = 600.0
    bot_block_s: float = 3.0
    budget_rps: float = 50_000.0
    block_base_s: float = 1.0
    block_max_s: float = 8.0


def _pick_targets(world: World, cfg: ChaosConfig) -> tuple[list[int], list[int]]:
    now = world.start_us
    followers = world.followers_of.counts(now)
    artists_mask = np.zeros(world.core, dtype=bool)
    artists_mask[np.unique(world.tracks.user_id) - 1] = True
    artists_mask &= ~world.gone & (world.spam_kind == 0)
    order = np.argsort(-np.where(artists_mask, followers, -1), kind="stable")
    artists = [int(i) + 1 for i in order[: cfg.artists]]
    reposts = world.reposters_of.counts(now)
    tracks = [
        int(i) + 1
        for i in np.argsort(-reposts, kind="stable")[: cfg.timeline_tracks]
        if reposts[i] > 0
    ]
    return artists, tracks


async def _drive(
    fleet: Fleet,
    cfg: ChaosConfig,
    artists: list[int],
    tracks: list[int],
    counters: dict[str, int],
    pgdata: Path | None,
    trace: list[Any],
) -> tuple[list[Any], bool]:
    """Drive the jobs to their end under the kills; the views, and whether time ran out."""
    assert fleet.coordinator.url is not None
    rng = random.Random(cfg.seed)
    # The trace reads the fleet as an operator: a researcher's view hides the workers.
    operator = create_key(fleet.dsn, "admin", "chaos-trace")
    async with (
        CoordinatorClient(fleet.coordinator.url, fleet.researcher_key) as client,
        CoordinatorClient(fleet.coordinator.url, operator) as watcher,
    ):
        jobs = [
            await client.submit(
                "user_sweep",
                {"id_from": 1, "id_to": cfg.users + 1, "chunk": cfg.chunk, "shuffle": True},
                max_attempts=cfg.max_attempts,
            ),
            await client.submit(
                "network",
                {
                    "seeds": artists,
                    "depth": cfg.depth,
                    "direction": "followers",
                    "max_users": cfg.max_users,
                },
                max_attempts=cfg.max_attempts,
            ),
        ]
        if tracks:
            jobs.append(
                await client.submit(
                    "track_timelines",
                    {"track_ids": tracks, "lists": ["reposters", "likers"], "timestamps": "exact"},
                    max_attempts=cfg.max_attempts,
                )
            )
        ids = [j.id for j in jobs]
        frozen: list[tuple[processes.Service, float]] = []
        try:
            clients = (client, watcher)
            return await _loop(fleet, cfg, clients, ids, trace, counters, pgdata, rng, frozen)
        finally:
            for worker, _ in frozen:  # nothing stays stopped past the run
                processes.thaw(worker)


async def _loop(
    fleet: Fleet,
    cfg: ChaosConfig,
    clients: tuple[CoordinatorClient, CoordinatorClient],
    ids: list[int],
    trace: list[Any],
    counters: dict[str, int],
    pgdata: Path | None,
    rng: random.Random,
    frozen: list[tuple[processes.Service, float]],
) -> tuple[list[Any], bool]:
    """Watch the jobs; kill or freeze workers, restart the coordinator and PostgreSQL.

    ``clients``: the researcher's (the jobs) and the operator's (the fleet trace).
    """
    assert fleet.coordinator.url is not None
    client, watcher = clients
    port = int(fleet.coordinator.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + cfg.timeout_s
    next_kill = time.monotonic() + cfg.kill_every_s
    # Besides the timer, a kill at each of these fractions of the units: a short run
    # (CI-sized) still loses workers mid-crawl however fast it goes.
    milestones = [0.1, 0.25, 0.45, 0.7]
    next_sample = time.monotonic()
    while True:
        views = [await _job(client, i) for i in ids]
        if all(v.state in ("done", "failed", "cancelled") for v in views):
            return views, False
        if time.monotonic() >= next_sample:
            await _sample_fleet(watcher, views, trace)
            next_sample = time.monotonic() + 5.0
        if time.monotonic() > deadline:
            return views, True  # compared all the same: what was missing, and where
        total = sum(v.progress.total for v in views) or 1
        finished = sum(v.progress.done + v.progress.dead for v in views) / total
        due = bool(milestones) and finished >= milestones[0]
        if due:
            milestones.pop(0)
        for entry in list(frozen):
            if time.monotonic() >= entry[1]:
                processes.thaw(entry[0])
                frozen.remove(entry)
        awake = [w for w in fleet.workers if all(w is not f for f, _ in frozen)]
        if (due or time.monotonic() >= next_kill) and awake:
            victim = rng.choice(awake)
            if rng.random() < cfg.sigstop_share:
                # Frozen, not replaced: it wakes past its leases with rows in hand.
                processes.freeze(victim)
                frozen.append((victim, time.monotonic() + cfg.sigstop_s))
                counters["worker_freezes"] += 1
            else:
                processes.kill(victim)
                fleet.replace_worker(victim)
                counters["worker_kills"] += 1
            next_kill = time.monotonic() + cfg.kill_every_s
        if cfg.restart_coordinator and not counters["coordinator_restarts"] and finished > 0.3:
            fleet.restart_coordinator(port)
            counters["coordinator_restarts"] += 1
        if pgdata is not None and not counters["database_restarts"] and finished > 0.6:
            database.restart_embedded(pgdata)
            counters["database_restarts"] += 1
        await asyncio.sleep(0.5)


async def _sample_fleet(client: CoordinatorClient, views: list[Any], trace: list[Any]) -> None:
    """One point of the budget trace: how the fleet's politeness moved during the run."""
    try:
        fleet = await client.request("GET", "/v1/fleet")
    except SoundfleetError:
        return  # the coordinator is restarting
    total = sum(v.progress.total for v in views) or 1
    trace.append(
        {
            "done": round(sum(v.progress.done for v in views) / total, 3),
            "budget_rps": round(float(fleet["budget_rps"]), 1),
            "workers": len(fleet["workers"]),
            "throttles": fleet["throttles"],
            "blocks": fleet.get("blocks", 0),
            "blocked": fleet.get("blocked", False),
        }
    )


async def _job(client: CoordinatorClient, job_id: int) -> Any:
    # The coordinator may be restarting: keep asking.
    for _ in range(60):
        try:
            return await client.job(job_id)
        except SoundfleetError:
            await asyncio.sleep(1)
    return await client.job(job_id)


def _mismatch(truth: set[Any], got: set[Any]) -> dict[str, int]:
    return {
        "truth": len(truth),
        "got": len(got),
        "missing": len(truth - got),
        "extra": len(got - truth),
    }


async def compare(dsn: str, world: World, cfg: ChaosConfig, tracks: list[int]) -> dict[str, Any]:
    """Compare the crawled tables with the truth; every count must be zero where named."""
    now = world.start_us
    ids = np.arange(1, cfg.users + 1)
    gone = world.is_gone(ids)
    out: dict[str, Any] = {}
    async with database.connection(dsn) as conn:
        users = {r[0] for r in await conn.fetch("SELECT id FROM users WHERE id <= $1", cfg.users)}
        gone_db = {r[0] for r in await conn.fetch("SELECT id FROM user_ids_gone")}
        out["users"] = _mismatch({int(i) for i in ids[~gone]}, users)
        out["user_ids_gone"] = _mismatch({int(i) for i in ids[gone]}, gone_db)
        for table, events in (("reposts", world.reposts), ("likes", world.likes)):
            vis = events.visible(now)
            keep = np.isin(vis.dst, tracks)
            truth = {
                (int(t), int(u), int(ts))
                for u, t, ts in zip(vis.src[keep], vis.dst[keep], vis.t_us[keep], strict=True)
            }
            rows = await conn.fetch(
                f"SELECT track_id, user_id, (extract(epoch FROM event_time) * 1e6)::bigint, "
                f"time_source FROM {table}"
            )
            got = {(r[0], r[1], r[2]) for r in rows}
            out[table] = {
                **_mismatch(truth, got),
                "duplicates": len(rows) - len(got),
                "not_exact": sum(1 for r in rows if r[3] != "exact"),
            }
        units = await conn.fetch("SELECT payload, state FROM work_units WHERE kind = 'follow_list'")
        crawled = [
            int(u["payload"]["user_id"])
            if isinstance(u["payload"], dict)
            else int(json.loads(u["payload"])["user_id"])
            for u in units
            if u["state"] == "done"
        ]
        vis = world.follows.visible(now)
        keep = np.isin(vis.dst, crawled)
        truth_pairs = {(int(a), int(b)) for a, b in zip(vis.src[keep], vis.dst[keep], strict=True)}
        rows = await conn.fetch(
            "SELECT follower_id, followee_id FROM follows WHERE followee_id = ANY($1::bigint[])",
            crawled,
        )
        got_pairs = {(r[0], r[1]) for r in rows}
        out["follower_pairs"] = {
            **_mismatch(truth_pairs, got_pairs),
            "lists": len(crawled),
            "truth_events": int(keep.sum()),
            "rows": len(rows),
        }
        states = {
            r[0]: r[1]
            for r in await conn.fetch("SELECT state, count(*) FROM work_units GROUP BY state")
        }
        out["units_by_state"] = states
        given_up = await conn.fetch(
            "SELECT kind, state, payload::text AS payload, attempt, last_error "
            "FROM work_units WHERE state IN ('dead', 'failed')"
        )
        out["units_given_up"] = [
            {
                "kind": d["kind"],
                "state": d["state"],
                "payload": d["payload"][:200],
                "attempt": d["attempt"],
                "error": (d["last_error"] or "")[:200],
            }
            for d in given_up
        ]
        # How near the run came to giving a unit up: the fewest attempts any unit had
        # left, and which unit that was (a run that passes with none left is luck).
        nearest = await conn.fetchrow(
            "SELECT kind, payload::text AS payload, attempt, max_attempts FROM work_units "
            "ORDER BY max_attempts - attempt, id LIMIT 1"
        )
        out["fewest_attempts_left"] = (
            None
            if nearest is None
            else {
                "left": nearest["max_attempts"] - nearest["attempt"],
                "attempt": nearest["attempt"],
                "kind": nearest["kind"],
                "payload": nearest["payload"][:200],
            }
        )
        out["retries"] = await conn.fetchval(
            "SELECT coalesce(sum(greatest(attempt - 1, 0)), 0) FROM work_units"
        )
    problems = sum(
        out[k]["missing"] + out[k]["extra"]
        for k in ("users", "user_ids_gone", "reposts", "likes", "follower_pairs")
    )
    problems += out["reposts"]["duplicates"] + out["likes"]["duplicates"]
    problems += states.get("leased", 0) + len(out["units_given_up"])
    out["mismatches"] = problems
    return out


def run_chaos(
    cfg: ChaosConfig, admin_dsn: str, log_dir: Path, pgdata: Path | None
) -> dict[str, Any]:
    """One chaos run on a scratch database of ``admin_dsn``'s server; the JSON summary.

    With ``pgdata`` (the embedded server's data directory) PostgreSQL is restarted once.
    """
    world = World.generate(cfg.seed, cfg.users)
    artists, tracks = _pick_targets(world, cfg)
    dsn = fresh_database(admin_dsn, "soundfleet_chaos")
    counters = {
        "worker_kills": 0,
        "worker_freezes": 0,
        "coordinator_restarts": 0,
        "database_restarts": 0,
    }
    summary: dict[str, Any] = {"config": asdict(cfg)}
    ok = False
    try:
        migrate_target(database.DatabaseTarget(dsn, embedded=True))
        spec = _spec(cfg)
        t0 = time.monotonic()
        fleet = start_fleet(dsn, spec, log_dir)
        try:
            trace: list[Any] = []
            summary["fleet_trace"] = trace
            views, timed_out = asyncio.run(
                _drive(fleet, cfg, artists, tracks, counters, pgdata, trace)
            )
            summary["bot"] = _simulator_stats(fleet) if cfg.profile == "real" else None
        finally:
            fleet.stop()
        seconds = time.monotonic() - t0
        result = asyncio.run(compare(dsn, world, cfg, tracks))
        ok = result["mismatches"] == 0 and all(v.state == "done" for v in views)
        summary.update(
            {
                "seconds": round(seconds, 1),
                "timed_out": timed_out,
                **counters,
                "jobs": {v.kind: v.state for v in views},
                "rows_landed": sum(v.progress.rows_landed for v in views),
                **result,
            }
        )
        summary["fenced"] = _fenced(log_dir)
        if cfg.profile == "real":
            summary["rediscoveries"] = _rediscoveries(summary, cfg, seconds)
            ok = ok and summary["rediscoveries"]["within_limit"]
    finally:
        if ok:
            drop_database(admin_dsn, dsn)
        else:
            # Kept for a look: the run's rows, units and errors are all there.
            summary["kept_database"] = make_url(dsn).render_as_string(hide_password=False)
            summary["open_with"] = f"psql '{summary['kept_database']}'"
    summary["ok"] = ok
    return summary


def _spec(cfg: ChaosConfig) -> FleetSpec:
    simulator_args: tuple[str, ...] = (
        "--fault-5xx",
        str(cfg.fault_5xx),
        "--fault-malformed",
        str(cfg.fault_malformed),
        "--rate-limit",
        str(cfg.rate_limit),
        "--rotate-client-id",
        str(cfg.rotate_client_id_s),
    )
    coordinator_env: tuple[tuple[str, str], ...] = (
        ("SOUNDFLEET_COORDINATOR_BUDGET_RPS", str(cfg.budget_rps)),
        ("SOUNDFLEET_COORDINATOR_LEASE_S", str(cfg.lease_s)),
    )
    if cfg.profile == "real":
        simulator_args += (
            "--profile",
            "real",
            "--bot-burst",
            str(cfg.bot_burst),
            "--bot-block",
            str(cfg.bot_block_s),
            "--admin-token",
            _ADMIN,
        )
        # Blocks of a few seconds (the simulator's), so the pauses are scaled to them.
        coordinator_env += (
            ("SOUNDFLEET_COORDINATOR_BLOCK_BASE_S", str(cfg.block_base_s)),
            ("SOUNDFLEET_COORDINATOR_BLOCK_MAX_S", str(cfg.block_max_s)),
        )
    return FleetSpec(
        coordinator_env=coordinator_env,
        seed=cfg.seed,
        users=cfg.users,
        workers=cfg.workers,
        time_scale=0.0,
        simulator_args=simulator_args,
        worker_args=cfg.worker_args,
    )


_ADMIN = "chaos-admin"


def _simulator_stats(fleet: Fleet) -> dict[str, int]:
    request = urllib.request.Request(
        f"{fleet.simulator.url}/_admin/stats", headers={"Authorization": f"Bearer {_ADMIN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        stats: dict[str, int] = json.loads(resp.read())
    return stats


def _fenced(log_dir: Path) -> dict[str, int]:
    """Batches (and rows) the workers' fenced landing refused, from their logs."""
    batches = rows = 0
    for log in log_dir.glob("worker-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"rows_fenced"' in line:
                batches += 1
                try:
                    rows += int(json.loads(line).get("rows", 0))
                except ValueError:
                    continue
    return {"batches": batches, "rows": rows}


def _rediscoveries(summary: dict[str, Any], cfg: ChaosConfig, seconds: float) -> dict[str, Any]:
    """Homepage fetches against what the rotations and blocks could justify.

    Every client_id rotation justifies one rediscovery, and so does every worker start
    that found no valid id yet (the first); a block justifies none (a rediscovery during
    a block fetches the homepage from a blocked address). The fleet may lose a rotation
    race once more per rotation (two ids invalidated back to back).
    """
    bot = summary.get("bot") or {}
    fetched = int(bot.get("homepage", 0))
    rotations = int(seconds // cfg.rotate_client_id_s) if cfg.rotate_client_id_s else 0
    allowed = 1 + 2 * rotations
    gap_ms = int(bot.get("homepage_min_gap_ms", -1))
    # The coordinator grants one rediscovery per interval (its default off the real
    # host); a gap a little under it is two grants racing two processes' clocks.
    interval_s = CoordinatorSettings(platform_api_base="http://127.0.0.1:1").rediscovery_interval_s
    return {
        "homepage_fetches": fetched,
        "rotations": rotations,
        "allowed": allowed,
        "min_gap_s": None if gap_ms < 0 else gap_ms / 1000,
        "interval_s": interval_s,
        "blocks_served": sum(
            int(v) for k, v in bot.items() if k.startswith("blocked_") and isinstance(v, int)
        ),
        "within_limit": fetched <= allowed and (gap_ms < 0 or gap_ms >= 900 * interval_s),
    }


def main(argv: list[str] | None = None) -> None:
    """A chaos run of any size, seed and fault mix (embedded PostgreSQL: it is restarted)."""
    d = ChaosConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--users", type=int, default=d.users)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--artists", type=int, default=d.artists, help="network seeds")
    p.add_argument("--depth", type=int, default=d.depth, help="network depth")
    p.add_argument("--max-users", type=int, default=d.max_users, help="network max_users")
    p.add_argument("--timeline-tracks", type=int, default=d.timeline_tracks)
    p.add_argument("--chunk", type=int, default=d.chunk, help="sweep ids per unit")
    p.add_argument("--kill-every", type=float, default=d.kill_every_s, metavar="SEC")
    p.add_argument(
        "--sigstop-share",
        type=float,
        default=d.sigstop_share,
        metavar="P",
        help="share of the kills that are a SIGSTOP for --sigstop-s instead",
    )
    p.add_argument("--sigstop-s", type=float, default=d.sigstop_s, metavar="SEC")
    p.add_argument("--lease", type=float, default=d.lease_s, metavar="SEC")
    p.add_argument("--fault-5xx", type=float, default=d.fault_5xx, metavar="P")
    p.add_argument("--fault-malformed", type=float, default=d.fault_malformed, metavar="P")
    p.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="RPS",
        help=f"per client_id (default {d.rate_limit:g}; real profile: 0.8 of --bot-burst)",
    )
    p.add_argument("--rotate-client-id", type=float, default=d.rotate_client_id_s, metavar="SEC")
    p.add_argument("--max-attempts", type=int, default=d.max_attempts)
    p.add_argument("--timeout", type=float, default=d.timeout_s, metavar="SEC")
    p.add_argument("--profile", choices=("default", "real"), default=d.profile)
    p.add_argument("--budget-rps", type=float, default=None, help="fleet budget")
    p.add_argument("--bot-burst", type=float, default=d.bot_burst, metavar="RPS")
    p.add_argument("--bot-block", type=float, default=d.bot_block_s, metavar="SEC")
    p.add_argument("--no-restarts", action="store_true", help="no coordinator/PG restart")
    args = p.parse_args(argv)
    settings = Settings(database_url=None)
    if Settings().database_url:
        print("chaos restarts PostgreSQL: it runs on the embedded server (DATABASE_URL ignored)")
    admin = database.resolve(settings).dsn
    budget = args.budget_rps
    if budget is None:
        # Under the bot protection a budget above its burst limit is what gets blocked.
        budget = 2 * args.bot_burst if args.profile == "real" else d.budget_rps
    rate_limit = args.rate_limit
    if rate_limit is None:
        # The platform's limiter below its bot protection's burst threshold: the fleet
        # has to find the limit from text 429s (no Retry-After) before it bursts.
        rate_limit = 0.8 * args.bot_burst if args.profile == "real" else d.rate_limit
    cfg = ChaosConfig(
        users=args.users,
        seed=args.seed,
        workers=args.workers,
        artists=args.artists,
        depth=args.depth,
        max_users=args.max_users,
        timeline_tracks=args.timeline_tracks,
        chunk=args.chunk,
        kill_every_s=args.kill_every,
        sigstop_share=args.sigstop_share,
        sigstop_s=args.sigstop_s,
        lease_s=args.lease,
        fault_5xx=args.fault_5xx,
        fault_malformed=args.fault_malformed,
        rate_limit=rate_limit,
        rotate_client_id_s=args.rotate_client_id,
        max_attempts=args.max_attempts,
        timeout_s=args.timeout,
        profile=args.profile,
        budget_rps=budget,
        bot_burst=args.bot_burst,
        bot_block_s=args.bot_block,
        restart_coordinator=not args.no_restarts,
    )
    pgdata = None if args.no_restarts else database.embedded_pgdata(settings)
    with tempfile.TemporaryDirectory(prefix="soundfleet-chaos-") as tmp:
        result = run_chaos(cfg, admin, Path(tmp), pgdata)
    result["database"] = make_url(admin).render_as_string(hide_password=True)
    print(json.dumps(result, default=str))
    if not result["ok"] and "open_with" in result:
        print(f"chaos failed; its database is kept: {result['open_with']}", file=sys.stderr)
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
