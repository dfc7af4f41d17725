"""Run the coordinator until SIGINT/SIGTERM, in one or several processes.

With ``processes > 1`` the parent binds the listening socket, forks the extra server
processes (each with its own event loop and database pool) and serves too; the kernel
spreads connections over them. This is the same as running several coordinators on one
database (they share nothing but PostgreSQL), packaged as one command so a single pod
can use all its cores.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import structlog
import uvloop
from aiohttp import web

from coordinator.app import create_app
from schemas.coordinator import CoordinatorSettings

log = structlog.get_logger("coordinator")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_socket(
    settings: CoordinatorSettings, dsn: str, sock: socket.socket, announce: str | None
) -> None:
    """Serve the app on an already bound socket until SIGINT/SIGTERM."""
    app = create_app(settings, dsn)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        if announce is not None:
            print(f"coordinator listening on {announce}", flush=True)
        log.info("coordinator_started", url=announce, pid=os.getpid(), lease_s=settings.lease_s)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("coordinator_stopping", pid=os.getpid())
    finally:
        await runner.cleanup()


def run(settings: CoordinatorSettings, dsn: str, host: str, port: int, processes: int = 1) -> int:
    """Serve on ``host:port`` with ``processes`` server processes; returns an exit code."""
    sock = bind(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    children: list[int] = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:  # child: serve, then leave without running the parent's cleanup
            code = 0
            try:
                uvloop.run(serve_socket(settings, dsn, sock, None))
            except BaseException:  # a child must never fall back into the parent's code
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    try:
        uvloop.run(serve_socket(settings, dsn, sock, url))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for pid in children:
            os.waitpid(pid, 0)
        sock.close()
    return 0
