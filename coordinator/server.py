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
from typing import cast

import structlog
import uvloop
from aiohttp import web

from coordinator.app import create_app
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
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("coordinator_stopping", pid=os.getpid())
    finally:
        if server is not None:
            server.close()
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
