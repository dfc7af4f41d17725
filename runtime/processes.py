"""Child processes of the fleet (simulator, coordinator, workers) for the demo and benches.

A service is started with ``--port 0`` and announces itself with one stdout line
``<name> listening on http://HOST:PORT``; :func:`start` waits for that line, then keeps
draining the child's output into a log file so it never blocks on a full pipe. Every
child runs in its own session so that a terminal's Ctrl-C reaches only us, and we stop
the children in order.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schemas.errors import SoundfleetError

READY = re.compile(r"listening on (http://\S+)")


class ServiceError(SoundfleetError):
    """A child service failed to start or died."""


@dataclass
class Service:
    """A running child process and where it listens (if it does)."""

    name: str
    proc: subprocess.Popen[str]
    log_path: Path
    url: str | None = None
    _drain: threading.Thread | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The last lines of the service's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def soundfleet_argv(*args: str) -> list[str]:
    """The command line running ``soundfleet ARGS`` with this interpreter."""
    return [sys.executable, "-m", "soundfleet.cli", *args]


def _pump(proc: subprocess.Popen[str], log: Path, first: list[str]) -> None:
    with log.open("a", encoding="utf-8") as fh:
        for line in first:
            fh.write(line)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            fh.flush()


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    timeout_s: float = 90.0,
) -> Service:
    """Start ``argv``; with ``wait_ready`` block until it prints its listening line."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        env=env,
        start_new_session=True,
    )
    service = Service(name, proc, log_path)
    seen: list[str] = []
    if wait_ready:
        deadline = time.monotonic() + timeout_s
        assert proc.stdout is not None
        # Reading in a helper thread lets us give up at the deadline.
        found: list[str] = []

        def read_until_ready() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(line)
                match = READY.search(line)
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read_until_ready, daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if not found:
            stop(service, grace_s=2)
            log_path.write_text("".join(seen))
            why = "exited" if proc.poll() is not None else "did not become ready"
            raise ServiceError(f"{name} {why}; its last output:\n{''.join(seen[-15:])}")
        service.url = found[0].rstrip("/")
    service._drain = threading.Thread(target=_pump, args=(proc, log_path, seen), daemon=True)
    service._drain.start()
    return service


def stop(service: Service, *, grace_s: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
    """Signal the service, wait up to ``grace_s``, then kill it; returns its exit code."""
    proc = service.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if service._drain is not None:
        service._drain.join(2)
    return proc.returncode


def kill(service: Service) -> None:
    """SIGKILL the service's whole process group at once (chaos tests)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.proc.pid, signal.SIGKILL)
    service.proc.wait(10)


def freeze(service: Service) -> None:
    """SIGSTOP the service's process group: it holds its leases but runs nothing (chaos)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.proc.pid, signal.SIGSTOP)


def thaw(service: Service) -> None:
    """SIGCONT a frozen service's process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.proc.pid, signal.SIGCONT)


def stop_all(services: Sequence[Service], *, grace_s: float = 10.0) -> None:
    """Stop services in the given order (workers first, then what they depend on)."""
    for service in services:
        stop(service, grace_s=grace_s)
