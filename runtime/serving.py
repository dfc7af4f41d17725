"""One server in one or several processes, until SIGINT/SIGTERM (coordinator, simulator).

The parent binds the listening socket, forks ``processes - 1`` children that serve on
it too (each with its own event loop), and serves itself; the kernel spreads the
connections over them. A child whose parent is gone (killed with -9) stops by itself;
the parent stops (exit code 1) when a child dies, so a pod is restarted whole instead
of serving on at a fraction of its capacity, and on its own stop it ends its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
import uvloop

log = structlog.get_logger("runtime.serving")

# serve(sock, first): serve on ``sock`` until :func:`until_stopped` returns; ``first``
# is True in the parent process only (the one that announces where it listens).
Serve = Callable[[socket.socket, bool], Coroutine[Any, Any, None]]

_POLL_S = 0.5


def bind(host: str, port: int) -> socket.socket:
    """The listening, non-blocking socket of ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def until_stopped() -> None:
    """Return on SIGINT or SIGTERM (the handlers are this event loop's)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run(serve: Serve, sock: socket.socket, processes: int = 1) -> int:
    """Serve on ``sock`` in ``processes`` processes until stopped; the exit code."""
    parent = os.getpid()
    children: list[int] = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:  # child: serve, then leave without running the parent's clean-up
            code = 0
            try:
                uvloop.run(_while(serve(sock, False), lambda: os.getppid() == parent))
            except BaseException:  # a child must never fall back into the parent's code
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    alive = set(children)

    def whole() -> bool:
        for pid in list(alive):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                alive.discard(pid)
                log.error("server_process_exited", pid=pid, status=status)
                return False
        return True

    try:
        return 0 if uvloop.run(_while(serve(sock, True), whole)) else 1
    finally:
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in alive:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        sock.close()


async def _while(server: Coroutine[Any, Any, None], ok: Callable[[], bool]) -> bool:
    """Run ``server`` while ``ok()`` holds; True when it ended by itself (a stop)."""
    task = asyncio.ensure_future(server)
    while True:
        done, _ = await asyncio.wait([task], timeout=_POLL_S)
        if done:
            task.result()
            return True
        if not ok():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
