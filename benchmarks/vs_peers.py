"""soundfleet against what a researcher would use instead, on one user sweep, in one sitting.

One simulator (seed 1, ``--ids`` users) serves every contestant the same ids 1..N at the
same concurrency; each contestant that lands does so in a fresh migrated scratch
database of its own, into the same ``users`` / ``user_ids_gone`` columns:

- ``bare``: the aiohttp loop of ``benchmarks.sweep.ceiling`` (uvloop; nothing decoded
  or stored): what the machine allows;
- ``oneoff``: the one-off script a researcher writes (``benchmarks/peers/oneoff.py``:
  aiohttp, ``json.loads``, asyncpg COPY in batches of 2,000), in its own process;
- ``oneoff_2``: the same script as two processes side by side, each with half the ids
  and half the concurrency: what splitting a crawl over two processes costs on this
  machine, the matched peer of two workers;
- ``scrapy``: Scrapy as its experts configure it (``benchmarks/peers/scrapy_sweep.py``:
  asyncio reactor on uvloop, requests generated lazily from ``start()``, per-domain
  concurrency, unused middlewares off, an asyncpg COPY pipeline), in its own process;
- ``soundfleet_1`` / ``soundfleet_2``: a ``user_sweep`` job submitted to a real
  coordinator and crawled by 1 and 2 worker processes, leases, checkpoints, the fleet
  budget and metrics on (``benchmarks.sweep.fleet_run``).

Rounds (``--repeats``, default 3) run bare, oneoff, oneoff_2, soundfleet_1 and
soundfleet_2 in turn, every second round in the reverse order (the machine drifts
within a round);
Scrapy, at about a twentieth of the others' speed, runs ``--scrapy-runs`` times (default
1) in the first round. Each round's ratios are taken within the round (the machine is
shared and drifts); the headline is the median over rounds. Users/s counts from the
first request (the job's submission for soundfleet) to the last row landed; CPU per
user is each contestant's own processes (plus, for soundfleet, the coordinator and
the PostgreSQL backends) and the simulator's.

Target (issue 26): soundfleet / oneoff >= 0.9, median of the rounds; reported for one
worker against the script's one process, two workers against it, and two workers
against the script's two processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import uvloop

from benchmarks.sweep import _cpu_s, ceiling, fleet_run, scratch_db
from runtime import database, processes
from schemas.settings import Settings


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _landed(dsn: str) -> int:
    async with database.connection(dsn) as conn:
        return int(
            await conn.fetchval(
                "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM user_ids_gone)"
            )
        )


async def _watch_backends(dsn: str, seen: dict[int, float], stop: asyncio.Event) -> None:
    """Keep the latest CPU reading of every PostgreSQL backend serving ``dsn``'s database.

    A peer's backends come and go with its process, so they are read while it runs
    (the last tenth of a second of each goes unseen).
    """
    async with database.connection(dsn) as conn:
        mine = conn.get_server_pid()
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
            for row in rows:
                pid = int(row["pid"])
                if pid != mine:
                    with contextlib.suppress(psutil.Error):
                        seen[pid] = _cpu_s(psutil.Process(pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


async def peer_run(
    name: str, argvs: list[list[str]], dsn: str, ids: int, sim: psutil.Process
) -> dict[str, Any]:
    """Run a peer's processes side by side to completion; users/s, CPU and rows.

    Users/s is by the peer's own clock (each process times its crawl; the slowest
    one's counts).
    """
    backends: dict[int, float] = {}
    stop = asyncio.Event()
    watch = asyncio.create_task(_watch_backends(dsn, backends, stop))
    sim_cpu, own_cpu = _cpu_s(sim), _children_cpu_s()

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)

    try:
        procs = await asyncio.gather(*(asyncio.to_thread(run, argv) for argv in argvs))
    finally:
        stop.set()
        await watch
    for proc in procs:
        if proc.returncode != 0:
            raise RuntimeError(f"the {name} peer failed:\n{proc.stderr[-3000:]}")
    own_cpu, sim_cpu = _children_cpu_s() - own_cpu, _cpu_s(sim) - sim_cpu
    stats = [json.loads(proc.stdout.strip().splitlines()[-1]) for proc in procs]
    seconds = max(float(s.pop("seconds")) for s in stats)
    return {
        "seconds": round(seconds, 2),
        "users_per_s": round(ids / seconds, 1),
        "rows_landed": await _landed(dsn),
        **({"processes": len(argvs)} if len(argvs) > 1 else {}),
        # the peer's whole processes, start-up included, against its crawl's users
        "cpu_us_per_user": {
            "client": round(1e6 * own_cpu / ids, 1),
            "simulator": round(1e6 * sim_cpu / ids, 1),
            "postgres": round(1e6 * sum(backends.values()) / ids, 1),
        },
        **stats[0],
    }


def _oneoff_argvs(web: str, dsn: str, ids: int, concurrency: int, parts: int) -> list[list[str]]:
    """The one-off script as ``parts`` processes, each with its share of ids and slots."""
    module = "benchmarks.peers.oneoff"
    bounds = [1 + ids * k // parts for k in range(parts + 1)]
    return [
        [sys.executable, "-m", module, web, dsn, str(bounds[k + 1] - 1),
         str(max(1, concurrency // parts)), str(bounds[k])]
        for k in range(parts)
    ]  # fmt: skip


def _scrapy_argv(web: str, dsn: str, ids: int, concurrency: int) -> list[str]:
    module = "benchmarks.peers.scrapy_sweep"
    return [sys.executable, "-m", module, "--web", web, "--dsn", dsn,
            "--ids", str(ids), "--concurrency", str(concurrency)]  # fmt: skip


async def one_round(
    args: argparse.Namespace,
    admin: str,
    web: str,
    sim: psutil.Process,
    log_dir: Path,
    scrapy: int,
    reverse: bool = False,
) -> dict[str, Any]:
    """bare, oneoff, oneoff_2, (scrapy), soundfleet_1, soundfleet_2; ratios within the round.

    ``reverse`` runs them in the opposite order: the machine drifts within a round, and
    alternating the order keeps the drift from favouring whoever runs first.
    """
    n, c = args.ids, args.concurrency
    got: dict[str, Any] = {}

    async def bare() -> None:
        got["bare"] = await ceiling(web, n, c, sim)

    def oneoff(parts: int) -> Callable[[], Awaitable[None]]:
        name = "oneoff" if parts == 1 else f"oneoff_{parts}"

        async def run() -> None:
            async with scratch_db(admin, f"bench_peers_{name}") as dsn:
                argvs = _oneoff_argvs(web, dsn, n, c, parts)
                got[name] = await peer_run("one-off", argvs, dsn, n, sim)

        return run

    async def scrapy_runs() -> None:
        runs = []
        for _ in range(scrapy):
            async with scratch_db(admin, "bench_peers_scrapy") as dsn:
                runs.append(await peer_run("Scrapy", [_scrapy_argv(web, dsn, n, c)], dsn, n, sim))
        if runs:
            got["scrapy"] = runs[0] if len(runs) == 1 else {"runs": runs}
            got["scrapy"]["users_per_s_median"] = statistics.median(r["users_per_s"] for r in runs)

    def fleet(workers: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            async with scratch_db(admin, f"bench_peers_fleet{workers}") as dsn:
                result = await fleet_run(dsn, web, n, c, workers, args.chunk, log_dir, sim)
            got[f"soundfleet_{workers}"] = {k: v for k, v in result.items() if k != "per_worker"}

        return run

    order = [bare, oneoff(1), oneoff(2), scrapy_runs, fleet(1), fleet(2)]
    for contestant in reversed(order) if reverse else order:
        await contestant()
    got["order"] = list(got)
    oneoff_rate = got["oneoff"]["users_per_s"]
    bare_rate = got["bare"]["users_per_s"]
    got["ratios"] = {
        **{f"soundfleet_{w}_over_oneoff":
           round(got[f"soundfleet_{w}"]["users_per_s"] / oneoff_rate, 3) for w in (1, 2)},
        "soundfleet_2_over_oneoff_2":
            round(got["soundfleet_2"]["users_per_s"] / got["oneoff_2"]["users_per_s"], 3),
        **{f"{k}_over_bare": round(got[k]["users_per_s"] / bare_rate, 3)
           for k in ("oneoff", "oneoff_2", "soundfleet_1", "soundfleet_2")},
    }  # fmt: skip
    return got


async def main_async(args: argparse.Namespace, admin: str | None = None) -> dict[str, Any]:
    """Every round against one simulator; the medians and the target.

    ``admin``: the server's admin DSN the scratch databases are made from (by default
    the configured database's).
    """
    admin = admin or database.resolve(Settings()).dsn
    log_dir = Path(tempfile.mkdtemp(prefix="soundfleet-vs-peers-"))
    server = processes.start(
        "simulator",
        processes.soundfleet_argv(
            "simulator", "--port", "0", "--seed", "1", "--users", str(args.ids)
        ),
        log_dir=log_dir,
        env={**os.environ, "SOUNDFLEET_LOG_LEVEL": "warning"},
    )  # fmt: skip
    try:
        assert server.url
        sim = psutil.Process(server.proc.pid)
        rounds = []
        for i in range(args.repeats):
            scrapy = args.scrapy_runs if i == 0 else 0
            rounds.append(
                await one_round(args, admin, server.url, sim, log_dir, scrapy, reverse=i % 2 == 1)
            )
    finally:
        processes.stop(server, grace_s=10)

    def median(key: str) -> float:
        return round(float(statistics.median(r["ratios"][key] for r in rounds)), 3)

    scrapy_rate = rounds[0]["scrapy"]["users_per_s_median"] if args.scrapy_runs else None
    summary: dict[str, Any] = {key: median(key) for key in rounds[0]["ratios"]}
    if scrapy_rate:
        for w in (1, 2):
            rate = statistics.median(r[f"soundfleet_{w}"]["users_per_s"] for r in rounds)
            summary[f"soundfleet_{w}_over_scrapy"] = round(rate / scrapy_rate, 2)
    contestants = ("oneoff", "oneoff_2", "soundfleet_1", "soundfleet_2")
    complete = all(r[k]["rows_landed"] == args.ids for r in rounds for k in contestants)
    if scrapy_rate:
        complete = complete and rounds[0]["scrapy"].get("rows_landed", args.ids) == args.ids
    return {
        "ids": args.ids,
        "concurrency": args.concurrency,
        "chunk": args.chunk,
        "cpu_count": os.cpu_count(),
        "summary": summary,
        "targets": {
            # one worker against the one script process, and two against either form
            **{
                f"{key}_ge_0_9": summary[key] >= 0.9
                for key in (
                    "soundfleet_1_over_oneoff",
                    "soundfleet_2_over_oneoff",
                    "soundfleet_2_over_oneoff_2",
                )
            },
            "rows_complete": complete,
        },
        "rounds": rounds,
        "logs": str(log_dir),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--help`` lists it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ids", type=int, default=200_000, help="user ids to sweep")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    p.add_argument("--chunk", type=int, default=1000, help="ids per soundfleet work unit")
    p.add_argument("--repeats", type=int, default=3, help="rounds (median reported)")
    p.add_argument("--scrapy-runs", type=int, default=1, help="Scrapy runs (0: skip it)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print its JSON."""
    args = parse_args(argv)
    print(json.dumps(uvloop.run(main_async(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
