"""Database bootstrap: an embedded PostgreSQL by default, ``DATABASE_URL``'s otherwise.

Whatever the source, callers get one URL and take the same code path after connect.
Driver errors are converted here into :class:`~schemas.errors.DatabaseError` or
:class:`~schemas.errors.ConfigError` carrying one readable line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from schemas.errors import ConfigError, DatabaseError
from schemas.settings import Settings

# pgserver keeps its lock under the runtime dir and falls back to /tmp when
# XDG_RUNTIME_DIR is unset (containers, CI), warning each time; the fallback is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

# What the driver raises when the server or the connection fails: every edge that talks
# to PostgreSQL converts these (a restarting server may surface as any of them, the
# client's own protocol state error included).
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg2"}


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the database is: a plain ``postgresql://`` DSN and whether we embed it."""

    dsn: str
    embedded: bool

    @property
    def sqlalchemy_url(self) -> URL:
        """The DSN as an SQLAlchemy URL for the asyncpg dialect."""
        return make_url(self.dsn).set(drivername="postgresql+asyncpg")

    def describe(self) -> str:
        """The DSN without its password, for printing."""
        return make_url(self.dsn).render_as_string(hide_password=True)


def parse_database_url(url: str) -> str:
    """Validate ``url`` and return it as a plain ``postgresql://`` DSN.

    Raises :class:`ConfigError` naming what is wrong.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"DATABASE_URL is malformed: {url!r} is not a database URL") from exc
    if parsed.drivername not in _SCHEMES:
        raise ConfigError(
            f"DATABASE_URL is malformed: scheme {parsed.drivername!r} is not PostgreSQL "
            "(use postgresql://user@host:port/db)"
        )
    query_host = parsed.query.get("host")
    if not parsed.host and not query_host:
        raise ConfigError("DATABASE_URL is malformed: it names no host")
    if not parsed.database:
        raise ConfigError("DATABASE_URL is malformed: it names no database")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(f"DATABASE_URL is malformed: port {parsed.port} is out of range")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def embedded_pgdata(settings: Settings) -> Path:
    """The data directory of the embedded server."""
    return settings.data_dir / "pgdata"


def start_embedded(settings: Settings) -> str:
    """Start (or join) the embedded server and return its DSN; it outlives this process."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pgserver.postgres_server import get_server  # late: it registers atexit hooks

    pgdata = embedded_pgdata(settings)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise DatabaseError(f"embedded PostgreSQL failed to start in {pgdata}: {exc}") from exc
    uri: str = server.get_uri()
    return uri


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server if it runs; True if one was stopped."""
    from pgserver.utils import PostmasterInfo

    pgdata = embedded_pgdata(settings)
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    process = info.process if info is not None and info.is_running() else None
    if process is None:
        return False
    process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
    process.wait(30)
    return True


def resolve(settings: Settings, *, start: bool = True) -> DatabaseTarget:
    """The database to use: ``DATABASE_URL``'s, else the embedded one (started if asked)."""
    if settings.database_url:
        return DatabaseTarget(parse_database_url(settings.database_url), embedded=False)
    if not start:
        raise ConfigError("no DATABASE_URL set and the embedded database was not started")
    return DatabaseTarget(start_embedded(settings), embedded=True)


def _where(dsn: str) -> str:
    parts = urlsplit(dsn)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    return f"{host}:{parts.port or 5432}"


def explain_connect_error(dsn: str, exc: BaseException) -> DatabaseError:
    """Turn a driver/OS error from connecting into one readable :class:`DatabaseError`."""
    where = _where(dsn)
    if isinstance(exc, socket.gaierror):
        reason = f"unknown host ({exc.strerror})"
    elif isinstance(exc, ConnectionRefusedError | OSError) and not isinstance(
        exc, asyncpg.PostgresError
    ):
        reason = exc.strerror or str(exc) or type(exc).__name__
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        reason = "timed out"
    else:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DatabaseError(f"cannot reach the database at {where}: {reason}")


async def connect(dsn: str, *, timeout: float = 10.0) -> asyncpg.Connection:
    """One asyncpg connection, with errors converted."""
    try:
        conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise explain_connect_error(dsn, exc) from exc
    return conn


async def create_pool(
    dsn: str,
    *,
    size: int = 10,
    timeout: float = 10.0,
    server_settings: dict[str, str] | None = None,
) -> asyncpg.Pool:
    """An asyncpg pool, with errors converted; ``server_settings`` set per session."""
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=size, timeout=timeout, server_settings=server_settings
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise explain_connect_error(dsn, exc) from exc
    return pool


def create_engine(target: DatabaseTarget, *, pool_size: int = 10) -> AsyncEngine:
    """An SQLAlchemy async engine (asyncpg driver) on ``target``."""
    return create_async_engine(target.sqlalchemy_url, pool_size=pool_size, pool_pre_ping=True)


@contextlib.asynccontextmanager
async def connection(dsn: str, *, timeout: float = 10.0) -> AsyncIterator[asyncpg.Connection]:
    """``async with connection(dsn) as conn``: connect, yield, always close."""
    conn = await connect(dsn, timeout=timeout)
    try:
        yield conn
    finally:
        await conn.close()


def env_with_database(dsn: str) -> dict[str, str]:
    """This process's environment with ``DATABASE_URL`` set, for child processes."""
    return {**os.environ, "DATABASE_URL": dsn}


def restart_embedded(pgdata: Path) -> None:
    """Restart the embedded server of ``pgdata`` (fast shutdown: sessions are cut).

    Chaos tests use it to show that the fleet rides out a database restart.
    """
    from pgserver._commands import POSTGRES_BIN_PATH

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs it as this user
    argv = [
        str(POSTGRES_BIN_PATH / "pg_ctl"),
        "-D",
        str(pgdata),
        "-l",
        str(pgdata / "log"),
        "-w",
        "-m",
        "fast",
        "restart",
    ]
    try:
        # No pipes: the restarted server would inherit them and keep them open.
        subprocess.run(
            argv,
            user=user,
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise DatabaseError(f"restarting the embedded PostgreSQL failed: {exc}") from exc
