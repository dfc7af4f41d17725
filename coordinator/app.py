"""The coordinator's aiohttp application: :func:`create_app` and the route table.

Handlers only parse, authorize and serialize; behaviour lives in
:class:`coordinator.service.Coordinator`. To extend the app (dashboard, scoring-run
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
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coordinator import apidocs, dashboard
from coordinator.auth import ANY_ROLE, RESEARCHER, WORKER
from coordinator.errors import FieldsError
from coordinator.http import (
    BODY_LIMIT,
    COORDINATOR,
    METRICS,
    ROUTES,
    QueryParam,
    Route,
    add_route,
    body,
    body_as,
    check_text,
    dict_response,
    error_middleware,
    field_errors,
    json_response,
    openapi,
    openapi_json,
    principal,
)
from coordinator.metrics import Metrics
from coordinator.service import Coordinator
from runtime import database
from runtime.migrate import head_revision
from schemas.coordinator import CoordinatorSettings
from schemas.errors import SoundfleetError
from schemas.jobs import (
    FieldError,
    FleetView,
    Health,
    JobKind,
    JobList,
    JobState,
    JobSubmit,
    JobView,
    ScoreJob,
    ScoreSpec,
    ScoringRunList,
    ScoringRunSubmit,
    ScoringRunView,
)
from schemas.settings import Settings
from schemas.work import (
    BatchCompleteRequest,
    BatchCompleteResponse,
    BlockReport,
    BlockState,
    ClientIdReport,
    ClientIdState,
    CompleteRequest,
    FailRequest,
    FleetAdvice,
    HeartbeatRequest,
    HeartbeatResponse,
    InvalidateRequest,
    LeaseRequest,
    LeaseResponse,
    ReleaseRequest,
    ScoreModel,
    ThrottleReport,
    UnitStateResponse,
)

log = structlog.get_logger("coordinator")

POOL = web.AppKey("pool", asyncpg.Pool)
VERSION = "1"


def _coord(request: web.Request) -> Coordinator:
    return request.app[COORDINATOR]


def _id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


# ---------------------------------------------------------------------------- jobs


class JobListQuery(BaseModel):
    """Filters of ``GET /v1/jobs``."""

    model_config = ConfigDict(extra="forbid")

    state: JobState | None = None
    kind: JobKind | None = None
    before: int | None = Field(default=None, ge=1)
    limit: int = Field(default=50, ge=1, le=500)


async def submit_job(request: web.Request) -> web.StreamResponse:
    """``POST /v1/jobs``."""
    job: JobSubmit = await body_as(request, JobSubmit)
    view = await _coord(request).submit(job, principal(request))
    return json_response(view, status=201)


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /v1/jobs``."""
    try:
        query = JobListQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise FieldsError("invalid query parameters", field_errors(exc, "query")) from None
    jobs = await _coord(request).list_jobs(
        principal(request), query.state, query.kind, query.before, query.limit
    )
    return json_response(jobs)


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /v1/jobs/{job_id}``."""
    return json_response(await _coord(request).get_job(_id(request, "job_id"), principal(request)))


async def cancel_job(request: web.Request) -> web.StreamResponse:
    """``POST /v1/jobs/{job_id}/cancel``."""
    return json_response(await _coord(request).cancel(_id(request, "job_id"), principal(request)))


class RunListQuery(BaseModel):
    """Filters of ``GET /v1/scoring-runs``."""

    model_config = ConfigDict(extra="forbid")

    model: ScoreModel | None = None
    before: int | None = Field(default=None, ge=1)
    limit: int = Field(default=50, ge=1, le=500)


async def submit_scoring_run(request: web.Request) -> web.StreamResponse:
    """``POST /v1/scoring-runs``: a ``score`` job."""
    req = await body(request, ScoringRunSubmit)
    job = ScoreJob(
        kind="score", spec=ScoreSpec(model=req.model, params=req.params), priority=req.priority
    )
    return json_response(await _coord(request).submit(job, principal(request)), status=201)


async def list_scoring_runs(request: web.Request) -> web.StreamResponse:
    """``GET /v1/scoring-runs``."""
    try:
        query = RunListQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise FieldsError("invalid query parameters", field_errors(exc, "query")) from None
    runs = await _coord(request).scoring_runs(
        principal(request), query.model, query.before, query.limit
    )
    return json_response(runs)


async def get_scoring_run(request: web.Request) -> web.StreamResponse:
    """``GET /v1/scoring-runs/{run_id}``."""
    run = await _coord(request).scoring_run(_id(request, "run_id"), principal(request))
    return json_response(run)


# -------------------------------------------------------------------------- leases


async def lease(request: web.Request) -> web.StreamResponse:
    """``POST /v1/leases``."""
    payload = await _coord(request).lease_payload(await body(request, LeaseRequest))
    return dict_response(payload)


async def heartbeat(request: web.Request) -> web.StreamResponse:
    """``POST /v1/leases/{unit}/heartbeat``."""
    req = await body(request, HeartbeatRequest)
    return json_response(await _coord(request).heartbeat(_id(request, "unit"), req))


async def complete(request: web.Request) -> web.StreamResponse:
    """``POST /v1/leases/{unit}/complete``."""
    req = await body(request, CompleteRequest)
    return json_response(await _coord(request).complete(_id(request, "unit"), req))


async def complete_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/leases/complete``."""
    req = await body(request, BatchCompleteRequest)
    results = await _coord(request).complete_batch_payload(req)
    return dict_response({"results": results})


async def fail(request: web.Request) -> web.StreamResponse:
    """``POST /v1/leases/{unit}/fail``."""
    req = await body(request, FailRequest)
    return json_response(await _coord(request).fail(_id(request, "unit"), req))


async def release(request: web.Request) -> web.StreamResponse:
    """``POST /v1/leases/{unit}/release``."""
    req = await body(request, ReleaseRequest)
    return json_response(await _coord(request).release(_id(request, "unit"), req))


# ------------------------------------------------------------ client ids and fleet


async def current_client_id(request: web.Request) -> web.StreamResponse:
    """``GET /v1/client-ids/current``."""
    worker_id = check_text("query.worker_id", request.query.get("worker_id") or None)
    return json_response(await _coord(request).client_id_state(worker_id))


async def report_client_id(request: web.Request) -> web.StreamResponse:
    """``POST /v1/client-ids``."""
    req = await body(request, ClientIdReport)
    return json_response(await _coord(request).report_client_id(req, principal(request)))


async def invalidate_client_id(request: web.Request) -> web.StreamResponse:
    """``POST /v1/client-ids/{value}/invalidate``."""
    req = await body(request, InvalidateRequest)
    value = check_text("value", request.match_info["value"]) or ""
    return json_response(await _coord(request).invalidate_client_id(value, req))


async def throttle(request: web.Request) -> web.StreamResponse:
    """``POST /v1/fleet/throttle``."""
    req = await body(request, ThrottleReport)
    return json_response(await _coord(request).throttle(req, principal(request)))


async def block(request: web.Request) -> web.StreamResponse:
    """``POST /v1/fleet/block``."""
    req = await body(request, BlockReport)
    return json_response(await _coord(request).block(req))


async def fleet_advice(request: web.Request) -> web.StreamResponse:
    """``GET /v1/fleet/advice``."""
    worker_id = check_text("query.worker_id", request.query.get("worker_id") or None)
    if not worker_id:
        missing = FieldError(field="query.worker_id", message="required", type="missing")
        raise FieldsError("query.worker_id is required", [missing])
    return json_response(await _coord(request).fleet_advice(worker_id))


async def fleet(request: web.Request) -> web.StreamResponse:
    """``GET /v1/fleet``."""
    return json_response(await _coord(request).fleet(principal(request)))


# ---------------------------------------------------------------------- operators


async def healthz(request: web.Request) -> web.StreamResponse:
    """``GET /healthz``: the process is up."""
    return json_response(Health(status="ok"))


async def readyz(request: web.Request) -> web.StreamResponse:
    """``GET /readyz``: the database answers and is migrated to head."""
    try:
        revision = await _coord(request).revision()
    except (OSError, asyncpg.PostgresError) as exc:
        return json_response(Health(status="unavailable", detail=f"database: {exc}"), 503)
    head = head_revision()
    if revision != head:
        detail = f"database at revision {revision or 'none'}, head is {head}"
        return json_response(Health(status="unavailable", detail=detail), 503)
    return json_response(Health(status="ok", detail=f"revision {head}"))


async def metrics(request: web.Request) -> web.StreamResponse:
    """``GET /metrics`` in the Prometheus text format."""
    await _coord(request).refresh_gauges()
    payload = generate_latest(request.app[METRICS].registry)
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def api_docs(request: web.Request) -> web.StreamResponse:
    """``GET /docs``: the OpenAPI document as a readable page."""
    doc = openapi(request.app[ROUTES], "soundfleet coordinator", VERSION)
    return web.Response(text=apidocs.render(doc), content_type="text/html")


async def openapi_doc(request: web.Request) -> web.StreamResponse:
    """``GET /openapi.json``."""
    doc = openapi_json(request.app[ROUTES], "soundfleet coordinator", VERSION)
    return web.Response(body=doc, content_type="application/json")


_UNIT = "{unit:\\d+}"
_JOB = "{job_id:\\d+}"

ROUTE_TABLE: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/jobs",
        submit_job,
        "Submit a job",
        RESEARCHER,
        JobSubmit,
        JobView,
        201,
        errors=(429,),
        tags=("jobs",),
    ),
    Route(
        "GET",
        "/v1/jobs",
        list_jobs,
        "List jobs (researchers: their own)",
        RESEARCHER,
        response=JobList,
        tags=("jobs",),
        errors=(422,),
        query=(
            QueryParam(
                "state",
                {"enum": ["queued", "running", "done", "failed", "cancelled"]},
                "only jobs in this state",
            ),
            QueryParam(
                "kind",
                {
                    "enum": [
                        "user_sweep",
                        "network",
                        "user_tracks",
                        "track_timelines",
                        "play_poll",
                        "score",
                    ]
                },
                "only jobs of this kind",
            ),
            QueryParam(
                "before", {"type": "integer", "minimum": 1}, "only jobs with a smaller id (paging)"
            ),
            QueryParam(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                "page size",
            ),
        ),
    ),
    Route(
        "GET",
        f"/v1/jobs/{_JOB}",
        get_job,
        "A job with its progress",
        RESEARCHER,
        response=JobView,
        errors=(404,),
        tags=("jobs",),
    ),
    Route(
        "POST",
        f"/v1/jobs/{_JOB}/cancel",
        cancel_job,
        "Cancel a job: queued units now, leased ones on their next heartbeat",
        RESEARCHER,
        response=JobView,
        errors=(404, 409),
        tags=("jobs",),
    ),
    Route(
        "POST",
        "/v1/scoring-runs",
        submit_scoring_run,
        "Start a scoring run (a score job)",
        RESEARCHER,
        ScoringRunSubmit,
        JobView,
        201,
        errors=(429,),
        tags=("scoring",),
    ),
    Route(
        "GET",
        "/v1/scoring-runs",
        list_scoring_runs,
        "List scoring runs",
        RESEARCHER,
        response=ScoringRunList,
        errors=(422,),
        tags=("scoring",),
        query=(
            QueryParam(
                "model",
                {"enum": ["network", "spam", "virality", "revisit"]},
                "only runs of this model",
            ),
            QueryParam(
                "before", {"type": "integer", "minimum": 1}, "only runs with a smaller id (paging)"
            ),
            QueryParam(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                "page size",
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/scoring-runs/{run_id:\\d+}",
        get_scoring_run,
        "One scoring run",
        RESEARCHER,
        response=ScoringRunView,
        errors=(404,),
        tags=("scoring",),
    ),
    Route(
        "POST",
        "/v1/leases",
        lease,
        "Claim work units",
        WORKER,
        LeaseRequest,
        LeaseResponse,
        tags=("leases",),
    ),
    Route(
        "POST",
        "/v1/leases/complete",
        complete_batch,
        "Complete many units at once (stale items reported per item)",
        WORKER,
        BatchCompleteRequest,
        BatchCompleteResponse,
        tags=("leases",),
    ),
    Route(
        "POST",
        f"/v1/leases/{_UNIT}/heartbeat",
        heartbeat,
        "Extend a lease and checkpoint its cursor",
        WORKER,
        HeartbeatRequest,
        HeartbeatResponse,
        errors=(404, 409),
        tags=("leases",),
    ),
    Route(
        "POST",
        f"/v1/leases/{_UNIT}/complete",
        complete,
        "Complete a unit",
        WORKER,
        CompleteRequest,
        UnitStateResponse,
        errors=(404, 409),
        tags=("leases",),
    ),
    Route(
        "POST",
        f"/v1/leases/{_UNIT}/fail",
        fail,
        "Report a failed attempt",
        WORKER,
        FailRequest,
        UnitStateResponse,
        errors=(404, 409),
        tags=("leases",),
    ),
    Route(
        "POST",
        f"/v1/leases/{_UNIT}/release",
        release,
        "Give a unit back untouched",
        WORKER,
        ReleaseRequest,
        UnitStateResponse,
        errors=(404, 409),
        tags=("leases",),
    ),
    Route(
        "GET",
        "/v1/client-ids/current",
        current_client_id,
        "The fleet's client_id, or whether this worker should discover one",
        WORKER,
        response=ClientIdState,
        tags=("client-ids",),
        query=(
            QueryParam(
                "worker_id",
                {"type": "string"},
                "the asking worker (needed to be granted the discovery)",
            ),
        ),
    ),
    Route(
        "POST",
        "/v1/client-ids",
        report_client_id,
        "Report a discovered client_id",
        WORKER,
        ClientIdReport,
        ClientIdState,
        tags=("client-ids",),
    ),
    Route(
        "POST",
        "/v1/client-ids/{value}/invalidate",
        invalidate_client_id,
        "Report a client_id the platform refused",
        WORKER,
        InvalidateRequest,
        ClientIdState,
        tags=("client-ids",),
    ),
    Route(
        "POST",
        "/v1/fleet/throttle",
        throttle,
        "Report a 429 (AIMD decrease, fleet pause)",
        WORKER,
        ThrottleReport,
        FleetAdvice,
        tags=("fleet",),
    ),
    Route(
        "GET",
        "/v1/fleet/advice",
        fleet_advice,
        "This worker's budget share, the fleet pause and the client_id (between leases)",
        WORKER,
        response=FleetAdvice,
        tags=("fleet",),
        errors=(422,),
        query=(QueryParam("worker_id", {"type": "string"}, "the asking worker", required=True),),
    ),
    Route(
        "POST",
        "/v1/fleet/block",
        block,
        "Report a bot-protection block (fleet pause with growing backoff)",
        WORKER,
        BlockReport,
        BlockState,
        tags=("fleet",),
    ),
    Route(
        "GET",
        "/v1/fleet",
        fleet,
        "Budget, pause, client_id and live workers",
        ANY_ROLE,
        response=FleetView,
        tags=("fleet",),
    ),
    Route("GET", "/healthz", healthz, "Liveness", response=Health, tags=("operators",)),
    Route(
        "GET",
        "/readyz",
        readyz,
        "Readiness: database reachable and migrated to head",
        response=Health,
        errors=(503,),
        tags=("operators",),
    ),
    Route(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        raw_response="text/plain",
        tags=("operators",),
    ),
    Route(
        "GET",
        "/openapi.json",
        openapi_doc,
        "This document",
        raw_response="application/json",
        tags=("operators",),
    ),
    Route(
        "GET",
        "/docs",
        api_docs,
        "This document as a readable page",
        raw_response="text/html",
        tags=("operators",),
    ),
)


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
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("work_listener_unavailable", error=str(exc))
            tried.set()
        finally:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
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
