"""Run the coordinator app until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog
from aiohttp import web

from coordinator.app import create_app
from schemas.coordinator import CoordinatorSettings

log = structlog.get_logger("coordinator")


async def serve(settings: CoordinatorSettings, dsn: str, host: str, port: int) -> None:
    """Serve on ``host:port`` (0: any free port); prints the URL once ready."""
    app = create_app(settings, dsn)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    try:
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        url = f"http://{host}:{bound}"
        print(f"coordinator listening on {url}", flush=True)
        log.info("coordinator_started", url=url, lease_s=settings.lease_s)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("coordinator_stopping")
    finally:
        await runner.cleanup()
    sys.stdout.flush()
