"""``soundfleet score MODEL [--param k=v ...]`` (one scoring run) and ``soundfleet scorer``.

``scorer`` is the scoring worker: it leases ``score`` units from the coordinator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

from runtime import database
from runtime.logs import configure_logging
from runtime.params import parse_params
from schemas.settings import Settings
from scoring.registry import MODEL_MODULES, run_model


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``score`` command."""
    score = sub.add_parser("score", help="run a scoring model over the crawled data")
    score.add_argument("model", choices=sorted(MODEL_MODULES), help="the model to run")
    score.add_argument(
        "--params",
        "--param",
        dest="params",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help="model parameters (values parsed as JSON when possible)",
    )
    score.set_defaults(handler=_score)
    worker = sub.add_parser("scorer", help="a scoring worker: lease `score` units and run them")
    worker.add_argument("--coordinator", metavar="URL", help="coordinator base URL")
    worker.add_argument("--key", metavar="KEY", help="worker-role API key")
    worker.add_argument("--poll", type=float, default=2.0, help="seconds between empty leases")
    worker.add_argument("--heartbeat", type=float, default=20.0, help="heartbeat period (s)")
    worker.add_argument("--max-units", type=int, default=None, help="stop after N units")
    worker.set_defaults(handler=_score_worker)


async def _run(dsn: str, timeout: float, model: str, params: dict[str, Any]) -> dict[str, Any]:
    async with database.connection(dsn, timeout=timeout) as conn:
        run_id = await run_model(conn, model, params)
        row = await conn.fetchrow(
            "SELECT id, state, error, metrics FROM scoring_runs WHERE id = $1", run_id
        )
    return dict(row) if row is not None else {"id": run_id, "state": "unknown"}


def _score(args: argparse.Namespace) -> int:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    params = parse_params(args.params)
    target = database.resolve(settings)
    run = asyncio.run(_run(target.dsn, settings.db_connect_timeout_s, args.model, params))
    if run["state"] != "done":
        print(f"run {run['id']} ({args.model}) {run['state']}: {run['error']}")
        return 1
    metrics = json.loads(run["metrics"]) if isinstance(run["metrics"], str) else run["metrics"]
    print(f"run {run['id']} ({args.model}) done")
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def _score_worker(args: argparse.Namespace) -> int:
    from scoring.worker import serve

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    target = database.resolve(settings)

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(
            args.coordinator or settings.coordinator_url,
            args.key or settings.api_key,
            target.dsn,
            poll_s=args.poll,
            heartbeat_s=args.heartbeat,
            max_units=args.max_units,
            stop=stop,
        )

    outcome = asyncio.run(main())
    print(json.dumps(outcome))
    return 0
