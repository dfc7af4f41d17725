"""Run the coordinator until SIGINT/SIGTERM, in one or several processes.

The processes (:mod:`runtime.serving`) each have their own event loop and database
pool: the same as several coordinators on one database (they share nothing but
PostgreSQL), packaged as one command so a single pod can use all its cores.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine
from typing import Any, cast

import structlog
from aiohttp import web

from coordinator.app import create_app
from runtime import serving
from schemas.coordinator import CoordinatorSettings

log = structlog.get_logger("coordinator")


class _Guard(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind two limits aiohttp does not set.

    * a connection must deliver its first request's headers within ``header_timeout_s``
      (a client trickling a header byte at a time otherwise holds it forever);
    * at most ``max_connections`` are open in this process; past that a new one is
      closed at once, before aiohttp sees it.
    """

    open_count = 0

    def __init__(self, inner: asyncio.Protocol, header_timeout_s: float, limit: int) -> None:
        self.inner = inner
        self.timeout_s = header_timeout_s
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        if _Guard.open_count >= self.limit:
            log.warning("connection_refused", reason="max_connections", limit=self.limit)
            self.transport.abort()
            return
        _Guard.open_count += 1
        self.admitted = True
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.timeout_s, self._too_slow)
        self.inner.connection_made(transport)

    def _too_slow(self) -> None:
        log.warning("connection_closed", reason="headers not received", timeout_s=self.timeout_s)
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            # Only the first request's headers are timed; aiohttp's keep-alive timeout
            # covers the idle time between requests.
            self.tail = (self.tail + data)[-4096:]
            if b"\r\n\r\n" in self.tail:
                self.timer.cancel()
                self.timer = None
                self.tail = b""
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.admitted:
            _Guard.open_count -= 1
            self.inner.connection_lost(exc)


async def serve_socket(
    settings: CoordinatorSettings, dsn: str, sock: socket.socket, announce: str | None
) -> None:
    """Serve the app on an already bound socket until SIGINT/SIGTERM."""
    app = create_app(settings, dsn)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, keepalive_timeout=settings.keepalive_s
    )
    await runner.setup()
    server: asyncio.Server | None = None
    try:
        handler = runner.server
        assert handler is not None
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Guard(handler(), settings.header_timeout_s, settings.max_connections),
            sock=sock,
            backlog=1024,
        )
        if announce is not None:
            print(f"coordinator listening on {announce}", flush=True)
        log.info("coordinator_started", url=announce, pid=os.getpid(), lease_s=settings.lease_s)
        await serving.until_stopped()
        log.info("coordinator_stopping", pid=os.getpid())
    finally:
        if server is not None:
            server.close()
        await runner.cleanup()


def run(settings: CoordinatorSettings, dsn: str, host: str, port: int, processes: int = 1) -> int:
    """Serve on ``host:port`` with ``processes`` server processes; returns an exit code."""
    sock = serving.bind(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"

    def serve(sock: socket.socket, first: bool) -> Coroutine[Any, Any, None]:
        return serve_socket(settings, dsn, sock, url if first else None)

    return serving.run(serve, sock, processes)
