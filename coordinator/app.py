"""The coordinator's aiohttp application: :func:`create_app` and its lifecycle.

The routes are :data:`coordinator.routes.ROUTE_TABLE`. To extend the app (dashboard, scoring-run
API), call :func:`create_app` and mount more :class:`~coordinator.http.Route` records
with :func:`~coordinator.http.add_route` before the app starts; they are guarded and
documented in ``/openapi.json`` like the built-in ones. ``app[COORDINATOR]`` and
``app[POOL]`` are available once the app has started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from coordinator import dashboard
from coordinator.http import (
    BODY_LIMIT,
    COORDINATOR,
    METRICS,
    ROUTES,
    add_route,
    error_middleware,
)
from coordinator.metrics import Metrics
from coordinator.routes import ROUTE_TABLE
from coordinator.service import Coordinator
from runtime import database
from schemas.coordinator import CoordinatorSettings
from schemas.errors import SoundfleetError
from schemas.settings import Settings

log = structlog.get_logger("coordinator")

POOL = web.AppKey("pool", asyncpg.Pool)


async def _listen(
    coordinator: Coordinator, dsn: str, tried: asyncio.Event, retry_s: float = 5.0
) -> None:
    """Keep a connection of its own listening for work notifications, reconnecting.

    ``tried`` is set once the first attempt succeeded or failed. While the connection
    is down (a database restart), held lease calls end at their timeout instead of on
    the notification: slower to start new work, never wrong.
    """
    while True:
        try:
            conn = await database.connect(dsn)
        except SoundfleetError as exc:
            log.warning("work_listener_unavailable", error=str(exc))
            tried.set()
            await asyncio.sleep(retry_s)
            continue
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await coordinator.listen(conn)
            tried.set()
            await lost.wait()
            log.warning("work_listener_lost")
        except database.DRIVER_ERRORS as exc:
            log.warning("work_listener_unavailable", error=str(exc))
            tried.set()
        finally:
            with contextlib.suppress(*database.DRIVER_ERRORS):
                await conn.close()
        await asyncio.sleep(retry_s)


def create_app(
    settings: CoordinatorSettings | None = None,
    dsn: str | None = None,
    *,
    pool: asyncpg.Pool | None = None,
) -> web.Application:
    """The coordinator app on database ``dsn`` (or on a caller-owned ``pool``).

    Without ``dsn`` the database is the one the environment configures (``DATABASE_URL``
    or the embedded server), resolved when the app starts.
    """
    settings = settings or CoordinatorSettings()
    app = web.Application(client_max_size=settings.body_limit_bytes, middlewares=[error_middleware])
    app[ROUTES] = []
    app[BODY_LIMIT] = settings.body_limit_bytes
    app[METRICS] = Metrics()
    for route in ROUTE_TABLE:
        add_route(app, route)
    dashboard.setup(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        own = pool is None
        target: str | None = None
        if pool is None:
            target = dsn or database.resolve(Settings()).dsn
            # A call waits at most lock_timeout behind rows a stalled session holds,
            # then answers 503 (clients retry) instead of hanging with its connection.
            the_pool = await database.create_pool(
                target,
                size=settings.db_pool_size,
                server_settings={
                    "lock_timeout": "15s",
                    "idle_in_transaction_session_timeout": "60s",
                    "application_name": "soundfleet-coordinator",
                },
            )
        else:
            the_pool = pool
        app[POOL] = the_pool
        coordinator = Coordinator(the_pool, settings, app[METRICS])
        await coordinator.start()
        app[COORDINATOR] = coordinator
        listener = None
        if target is not None:
            # Started before serving, so a job submitted right away wakes waiting calls.
            tried = asyncio.Event()
            listener = asyncio.create_task(_listen(coordinator, target, tried))
            await tried.wait()
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            if own:
                await the_pool.close()

    async def stop_waiting(app: web.Application) -> None:
        # Before aiohttp waits for in-flight handlers: long-polls answer at once.
        if COORDINATOR in app:
            app[COORDINATOR].close()

    app.on_shutdown.append(stop_waiting)

    app.cleanup_ctx.append(lifecycle)
    return app
