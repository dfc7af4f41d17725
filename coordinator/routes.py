"""The coordinator's HTTP handlers and its route table.

Handlers only parse, authorize and serialize; behaviour lives in
:class:`coordinator.service.Coordinator`, and each :class:`~coordinator.http.Route`
record says once what an endpoint takes and answers (its query parameters are the
models of :mod:`schemas`), for the server and its OpenAPI document alike.
"""

from __future__ import annotations

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coordinator import apidocs
from coordinator.auth import ANY_ROLE, RESEARCHER, WORKER
from coordinator.http import (
    COORDINATOR,
    METRICS,
    ROUTES,
    Route,
    body,
    body_as,
    check_text,
    dict_response,
    json_response,
    openapi,
    openapi_json,
    principal,
    query,
)
from coordinator.service import Coordinator
from runtime.migrate import head_revision
from schemas.jobs import (
    FleetView,
    Health,
    JobList,
    JobListQuery,
    JobSubmit,
    JobView,
    RunListQuery,
    ScoreJob,
    ScoreSpec,
    ScoringRunList,
    ScoringRunSubmit,
    ScoringRunView,
)
from schemas.work import (
    AdviceQuery,
    BatchCompleteRequest,
    BatchCompleteResponse,
    BlockReport,
    BlockState,
    ClientIdQuery,
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
    ThrottleReport,
    UnitStateResponse,
)

log = structlog.get_logger("coordinator")

VERSION = "1"


def _coord(request: web.Request) -> Coordinator:
    return request.app[COORDINATOR]


def _id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


# ---------------------------------------------------------------------------- jobs


async def submit_job(request: web.Request) -> web.StreamResponse:
    """``POST /v1/jobs``."""
    job: JobSubmit = await body_as(request, JobSubmit)
    view = await _coord(request).submit(job, principal(request))
    return json_response(view, status=201)


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /v1/jobs``."""
    q = query(request, JobListQuery)
    jobs = await _coord(request).list_jobs(principal(request), q.state, q.kind, q.before, q.limit)
    return json_response(jobs)


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /v1/jobs/{job_id}``."""
    return json_response(await _coord(request).get_job(_id(request, "job_id"), principal(request)))


async def cancel_job(request: web.Request) -> web.StreamResponse:
    """``POST /v1/jobs/{job_id}/cancel``."""
    return json_response(await _coord(request).cancel(_id(request, "job_id"), principal(request)))


async def submit_scoring_run(request: web.Request) -> web.StreamResponse:
    """``POST /v1/scoring-runs``: a ``score`` job."""
    req = await body(request, ScoringRunSubmit)
    job = ScoreJob(
        kind="score", spec=ScoreSpec(model=req.model, params=req.params), priority=req.priority
    )
    return json_response(await _coord(request).submit(job, principal(request)), status=201)


async def list_scoring_runs(request: web.Request) -> web.StreamResponse:
    """``GET /v1/scoring-runs``."""
    q = query(request, RunListQuery)
    runs = await _coord(request).scoring_runs(principal(request), q.model, q.before, q.limit)
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
    worker_id = query(request, ClientIdQuery).worker_id or None
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
    return json_response(await _coord(request).fleet_advice(query(request, AdviceQuery).worker_id))


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
        query=JobListQuery,
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
        query=RunListQuery,
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
        query=ClientIdQuery,
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
        query=AdviceQuery,
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
