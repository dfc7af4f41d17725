"""``soundfleet worker``: run one crawler worker process (or probe its dependencies)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from typing import Any

import structlog
import uvloop
from pydantic import ValidationError

from crawler.config import WorkerSettings
from crawler.metrics import WorkerMetrics
from crawler.store import Store
from crawler.worker import Worker, new_worker_id
from runtime import database
from runtime.client import CoordinatorClient
from runtime.logs import configure_logging
from runtime.requirements import describe_validation_error, load_settings
from schemas.errors import ConfigError, SoundfleetError
from schemas.settings import Settings
from schemas.work import CRAWL_KINDS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` and ``smoke`` commands."""
    p = sub.add_parser(
        "worker",
        help="run a crawler worker: lease units from the coordinator, crawl, land rows",
        description=(
            "Leases work units from the coordinator, crawls the platform API and lands "
            "rows in PostgreSQL (DATABASE_URL, else the embedded server). Settings come "
            "from SOUNDFLEET_* variables; flags override them."
        ),
    )
    p.add_argument("--coordinator", metavar="URL", help="coordinator base URL")
    p.add_argument("--key", metavar="KEY", help="worker-role API key")
    p.add_argument("--concurrency", type=int, metavar="N", help="requests in flight")
    p.add_argument("--units", type=int, metavar="N", help="units worked on at once")
    p.add_argument(
        "--kinds",
        nargs="+",
        choices=CRAWL_KINDS,
        metavar="KIND",
        help=f"unit kinds to lease (default all: {' '.join(CRAWL_KINDS)})",
    )
    p.add_argument("--grace", type=float, metavar="S", help="SIGTERM drain period in seconds")
    p.add_argument("--metrics-port", type=int, metavar="P", help="serve Prometheus metrics")
    p.add_argument(
        "--discovery",
        choices=("auto", "hydration", "bundles", "browser"),
        help="client_id discovery strategy (default: all, in that order)",
    )
    p.add_argument(
        "--web-profiles",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="user_range: also fetch each live user's web profiles (default: on)",
    )
    p.add_argument("--api-base", metavar="URL", help="platform API base URL")
    p.add_argument("--web-base", metavar="URL", help="platform web client URL")
    p.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="S",
        help="drain and exit once no unit was leasable for S seconds (batch runs)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="probe: exit 0 if the coordinator and the database answer, else 1",
    )
    p.set_defaults(handler=_handle)
    _register_smoke(sub)


def _register_smoke(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "smoke",
        help="a few polite requests to the REAL platform (needs --live)",
        description=(
            "Discovery, one user, one page of each list and web-profiles both ways, at "
            "one request a second and never more than --max-requests: prints each "
            "status, the cursor forms and the bot-protection headers. It contacts the "
            "real SoundCloud, so it refuses to run without --live."
        ),
    )
    p.add_argument("--live", action="store_true", help="yes, send requests to the platform")
    p.add_argument("--max-requests", type=int, default=20, metavar="N", help="cap (1-100)")
    p.add_argument("--user", default="soundcloud", help="permalink or numeric id to look at")
    p.add_argument("--transport", choices=("aiohttp", "impersonate"), default="aiohttp")
    p.add_argument("--user-agent", metavar="UA", help="browser User-Agent to send")
    p.add_argument("--api-base", default="https://api-v2.soundcloud.com", metavar="URL")
    p.add_argument("--web-base", default="https://soundcloud.com", metavar="URL")
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.set_defaults(handler=_smoke)


def _smoke(args: argparse.Namespace) -> int:
    import json

    from crawler.smoke import SmokeConfig, run_smoke, summary
    from crawler.transport import (
        AiohttpTransport,
        BrowserProfile,
        ImpersonatingTransport,
        create_session,
    )

    if not args.live:
        print(
            "soundfleet smoke: refusing to run: it sends requests to the real platform "
            f"({args.api_base}); pass --live to confirm",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.max_requests <= 100:
        raise ConfigError("--max-requests must be between 1 and 100")
    configure_logging("warning")
    profile = BrowserProfile(**({"user_agent": args.user_agent} if args.user_agent else {}))
    cfg = SmokeConfig(
        api_base=args.api_base,
        web_base=args.web_base,
        user=args.user,
        max_requests=args.max_requests,
    )

    async def run() -> dict[str, Any]:
        transport = (
            ImpersonatingTransport(profile, 1, 30)
            if args.transport == "impersonate"
            else AiohttpTransport(create_session(1, 30, profile))
        )
        try:
            return summary(await run_smoke(cfg, transport, profile))
        finally:
            await transport.close()

    result = asyncio.run(run())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for step in result["steps"]:
        cursor = f" cursor={step['cursor_format']}" if step["cursor_format"] else ""
        print(f"{step['status'] or '-':>4} {step['name']:<24} {step['outcome']}{cursor}")
        if step["headers"] or step["cookies_set"]:
            shown = ", ".join(f"{k}: {v}" for k, v in step["headers"].items())
            cookies = ",".join(step["cookies_set"])
            print(f"     {shown}" + (f"; sets cookies {cookies}" if cookies else ""))
    print(
        f"{result['requests']} requests; cursor forms {result['cursor_formats'] or 'none'}; "
        f"blocked: {result['blocked']}; throttled: {result['throttled']}"
    )
    return 0


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    """Environment settings with the command line's flags applied on top."""
    overrides: dict[str, Any] = {
        "coordinator_url": args.coordinator,
        "api_key": args.key,
        "concurrency": args.concurrency,
        "unit_slots": args.units,
        "kinds": tuple(args.kinds) if args.kinds else None,
        "grace_s": args.grace,
        "metrics_port": args.metrics_port,
        "discovery": args.discovery,
        "api_base": args.api_base,
        "web_base": args.web_base,
        "web_profiles": args.web_profiles,
    }
    base = load_settings(WorkerSettings)
    data = base.model_dump()
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return WorkerSettings.model_validate(data)
    except ValidationError as exc:
        detail = describe_validation_error(exc, WorkerSettings)
        raise ConfigError(f"worker settings are invalid (flag or environment): {detail}") from None


def _dsn(settings: WorkerSettings) -> str:
    shared = Settings()
    if settings.database_url:
        shared = shared.model_copy(update={"database_url": settings.database_url})
    return database.resolve(shared).dsn


async def check(settings: WorkerSettings, dsn: str) -> list[str]:
    """What is wrong with this worker's dependencies (empty: healthy)."""
    problems: list[str] = []
    async with CoordinatorClient(
        settings.coordinator_url, settings.api_key or "", new_worker_id()
    ) as coordinator:
        if not await coordinator.healthy():
            problems.append(f"coordinator at {settings.coordinator_url} is not healthy")
    try:
        store = await Store.open(dsn, size=1)
        try:
            await store.ping()
        finally:
            await store.close()
    except SoundfleetError as exc:
        problems.append(str(exc))
    return problems


def _handle(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.log_level, settings.log_format)
    dsn = _dsn(settings)
    if args.check:
        problems = uvloop.run(check(settings, dsn))
        for problem in problems:
            print(f"soundfleet worker: unhealthy: {problem}", file=sys.stderr)
        if not problems:
            print("soundfleet worker: healthy")
        return 1 if problems else 0
    metrics = WorkerMetrics()
    worker = Worker(settings, dsn, metrics=metrics)
    if settings.metrics_port is not None:
        port = metrics.serve(settings.metrics_port, settings.metrics_host)
        structlog.get_logger("crawler.cli").info("metrics_serving", port=port)
    tune_gc()

    async def main() -> int:
        ticker = asyncio.create_task(metrics.tick_forever())
        try:
            return await worker.run(stop_after_idle=args.exit_when_idle)
        finally:
            ticker.cancel()

    return uvloop.run(main())


GC_THRESHOLDS = (20_000, 20, 100)
"""The worker process's collector thresholds (CPython's default is 700, 10, 10)."""


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running crawler process.

    Each request allocates hundreds of container objects and a unit keeps a few
    thousand parsed users alive until its batch lands, so with the default thresholds
    a young collection runs every few requests and keeps re-scanning the survivors (a
    sixth of a worker's CPU in profiles). Freezing what start-up built (modules,
    models, tables: never garbage) takes it out of every later full collection, and a
    larger young generation is scanned far less often; reference counting still frees
    almost everything, so memory stays where it was.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: WorkerSettings, dsn: str) -> int:
    """Run a worker to completion on a uvloop event loop (for embedding)."""
    return uvloop.run(Worker(settings, dsn).run())


__all__ = ["check", "register", "run_worker", "settings_from", "tune_gc"]
