"""structlog configuration, done once at each entry point.

JSON lines when stderr is not a TTY (pods, CI), a console renderer otherwise, for our
own events and for standard-library log records alike (structlog's
``ProcessorFormatter``). Context such as ``worker_id``, ``job_id``, ``unit_id`` is bound
with contextvars or ``bind``.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _StderrLogger(structlog.PrintLogger):
    """Prints to whatever ``sys.stderr`` is at write time, not at configure time.

    A logger cached on first use would otherwise keep a stream that a test harness (or
    a daemon context) has since closed.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = msg
    fatal = failure = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to the ``sys.stderr`` of write time (see :class:`_StderrLogger`)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass  # the stream is always the current sys.stderr


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Configure structlog and the stdlib root logger (stderr) for this process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *_args: _StderrLogger(),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library (aiohttp, asyncio, alembic): their
    # lines go through the same processors and renderer, so a pod's log is all JSON.
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(max(_LEVELS[level], logging.WARNING))


def short(secret: str | None, keep: int = 6) -> str:
    """A secret (API key, client_id) cut to a prefix safe to log."""
    if not secret:
        return "-"
    return secret[:keep] + "…"
