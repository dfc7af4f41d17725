"""Job specs (what a researcher submits) and the coordinator's jobs/fleet API bodies.

A job is ``{"kind": ..., "spec": {...}, "priority": 0}``; ``kind`` selects the spec model
(a discriminated union, so OpenAPI shows one schema per kind and a bad spec gets
field-level errors such as ``spec.depth``). The coordinator expands a job into work units
(:mod:`schemas.work`).

Id ranges are half-open: ``user_sweep`` with ``id_from=1, id_to=1001`` covers ids 1..1000.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.work import ScoreModel, TimelineSpec, Timestamps, TrackList, UserId

JobKind = Literal["user_sweep", "network", "user_tracks", "track_timelines", "play_poll", "score"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
Role = Literal["researcher", "worker", "admin"]

#: Upper bound on the units one job may expand into at submission (bigger: split it).
MAX_UNITS_PER_JOB = 1_000_000
#: Upper bound on explicit id lists in a spec.
MAX_IDS = 100_000

Permalink = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserSweepSpec(_Spec):
    """Fetch every user id in ``[id_from, id_to)``, ``chunk`` ids per work unit."""

    id_from: UserId
    id_to: UserId = Field(description="exclusive upper bound")
    chunk: int = Field(default=1000, ge=1, le=100_000, strict=True, description="ids per work unit")
    shuffle: bool = Field(default=False, description="lease the ranges in random order")

    @model_validator(mode="after")
    def _range(self) -> UserSweepSpec:
        if self.id_to <= self.id_from:
            raise ValueError("id_to must be greater than id_from (the range is [id_from, id_to))")
        units = -(-(self.id_to - self.id_from) // self.chunk)
        if units > MAX_UNITS_PER_JOB:
            raise ValueError(
                f"the range makes {units} units (> {MAX_UNITS_PER_JOB}); "
                "raise chunk or split the job"
            )
        return self


class NetworkSpec(_Spec):
    """Breadth-first crawl of the follow graph from ``seeds``.

    ``depth`` 0 fetches the seeds' own lists; each further level fetches the lists of the
    users found one hop out. Users are deduplicated per job and at most ``max_users``
    users (seeds included) get their lists fetched. A seed is a numeric user id or a
    permalink of a user already in the ``users`` table (resolved at submission).
    """

    seeds: list[UserId | Permalink] = Field(min_length=1, max_length=10_000)
    depth: int = Field(default=1, ge=0, le=3, strict=True)
    direction: Literal["followers", "followings", "both"] = "both"
    max_users: int = Field(default=10_000, ge=1, le=MAX_UNITS_PER_JOB // 2, strict=True)


class UserTracksSpec(_Spec):
    """Fetch each user's tracks; with ``then_timelines`` queue every found track's lists."""

    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_IDS)
    then_timelines: TimelineSpec | None = None


class TrackTimelinesSpec(_Spec):
    """Fetch each track's reposters and/or likers with event times."""

    track_ids: list[UserId] = Field(min_length=1, max_length=MAX_IDS)
    lists: tuple[TrackList, ...] = Field(default=("reposters",), min_length=1, max_length=2)
    timestamps: Timestamps = "exact"

    @field_validator("lists")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists must not repeat an entry")
        return value


class PlayPollSpec(_Spec):
    """Snapshot each track's counters every ``every_s`` seconds for ``for_s`` seconds."""

    track_ids: list[UserId] = Field(min_length=1, max_length=MAX_IDS)
    every_s: float = Field(ge=1, le=30 * 86400)
    for_s: float = Field(default=0, ge=0, le=365 * 86400)

    @model_validator(mode="after")
    def _size(self) -> PlayPollSpec:
        units = len(self.track_ids) * (int(self.for_s // self.every_s) + 1)
        if units > MAX_UNITS_PER_JOB:
            raise ValueError(f"the schedule makes {units} units (> {MAX_UNITS_PER_JOB})")
        return self


class ScoreSpec(_Spec):
    """One scoring run of ``model`` with ``params``."""

    model: ScoreModel
    params: dict[str, Any] = Field(default_factory=dict)


SPEC_MODELS: dict[str, type[_Spec]] = {
    "user_sweep": UserSweepSpec,
    "network": NetworkSpec,
    "user_tracks": UserTracksSpec,
    "track_timelines": TrackTimelinesSpec,
    "play_poll": PlayPollSpec,
    "score": ScoreSpec,
}


class _Submit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: int = Field(
        default=0, ge=-100, le=100, description="lower runs first (like nice); default 0"
    )
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="per-unit attempts before `dead` (default: the server's)",
    )


class UserSweepJob(_Submit):
    """Submit a ``user_sweep`` job."""

    kind: Literal["user_sweep"]
    spec: UserSweepSpec


class NetworkJob(_Submit):
    """Submit a ``network`` job."""

    kind: Literal["network"]
    spec: NetworkSpec


class UserTracksJob(_Submit):
    """Submit a ``user_tracks`` job."""

    kind: Literal["user_tracks"]
    spec: UserTracksSpec


class TrackTimelinesJob(_Submit):
    """Submit a ``track_timelines`` job."""

    kind: Literal["track_timelines"]
    spec: TrackTimelinesSpec


class PlayPollJob(_Submit):
    """Submit a ``play_poll`` job."""

    kind: Literal["play_poll"]
    spec: PlayPollSpec


class ScoreJob(_Submit):
    """Submit a ``score`` job."""

    kind: Literal["score"]
    spec: ScoreSpec


JobSubmit = Annotated[
    UserSweepJob | NetworkJob | UserTracksJob | TrackTimelinesJob | PlayPollJob | ScoreJob,
    Field(discriminator="kind"),
]


class JobProgress(BaseModel):
    """Where a job's units are, derived from ``work_units`` at read time."""

    total: int
    queued: int = Field(description="waiting, including failed attempts waiting to retry")
    retrying: int = Field(description="queued units that failed at least once")
    leased: int
    done: int
    failed: int = Field(description="failed permanently (the worker said not retryable)")
    dead: int = Field(description="gave up after max_attempts")
    cancelled: int
    rows_landed: int
    units_per_s: float = Field(
        description="units finished per second: over the last minute (or the job's age, "
        "while it is younger), over its whole life once it is finished"
    )
    eta_s: float | None = Field(description="seconds to finish at that rate")


class JobView(BaseModel):
    """A job with its progress."""

    id: int
    kind: JobKind
    spec: dict[str, Any]
    state: JobState
    priority: int
    owner: str | None = Field(description="name of the API key that submitted it")
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    progress: JobProgress


class JobList(BaseModel):
    """A page of jobs, newest first; pass ``next_before`` as ``before`` for the next."""

    jobs: list[JobView]
    next_before: int | None


class ScoringRunSubmit(BaseModel):
    """``POST /v1/scoring-runs``: shorthand for submitting a ``score`` job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ScoreModel
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-100, le=100, description="lower runs first")


class ScoringRunView(BaseModel):
    """One scoring run as the scoring worker recorded it."""

    id: int
    model: ScoreModel
    model_version: str
    params: dict[str, Any]
    state: Literal["running", "done", "failed"]
    metrics: dict[str, Any] | None
    durations: dict[str, Any] | None
    error: str | None
    job_id: int | None
    unit_id: int | None
    started_at: datetime
    finished_at: datetime | None


class ScoringRunList(BaseModel):
    """A page of scoring runs, newest first; pass ``next_before`` as ``before``."""

    runs: list[ScoringRunView]
    next_before: int | None


class WorkerView(BaseModel):
    """A worker seen recently."""

    id: str
    hostname: str | None
    pid: int | None
    kinds: list[str]
    started_at: datetime
    last_seen_at: datetime
    leased: int = Field(description="units it holds now")


class FleetView(BaseModel):
    """``GET /v1/fleet``: politeness budget, client_id and live workers."""

    budget_rps: float = Field(description="current fleet-wide budget (after AIMD)")
    max_budget_rps: float
    paused_until: datetime | None
    throttles: int = Field(description="429s reported since the fleet started")
    blocked: bool = Field(default=False, description="a bot-protection pause is running")
    blocked_since: datetime | None = Field(
        default=None, description="start of the running block episode"
    )
    block_until: datetime | None = Field(
        default=None, description="end of the last block pause: the next try"
    )
    block_level: int = Field(default=0, description="doublings of the block pause")
    blocks: int = Field(default=0, description="block episodes and deepenings so far")
    block_reason: str | None = None
    client_id: str | None
    discovery_worker: str | None
    workers: list[WorkerView]


class FieldError(BaseModel):
    """One invalid field."""

    field: str = Field(description="dotted path of the field, e.g. `spec.depth`")
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the coordinator."""

    error: str = Field(description="machine-readable code: invalid, unauthorized, conflict, ...")
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class Health(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: Literal["ok", "unavailable"]
    detail: str = ""


class JobListQuery(BaseModel):
    """Filters of ``GET /v1/jobs`` (its query parameters, documented from here)."""

    model_config = ConfigDict(extra="forbid")

    state: JobState | None = Field(default=None, description="only jobs in this state")
    kind: JobKind | None = Field(default=None, description="only jobs of this kind")
    before: int | None = Field(
        default=None, ge=1, description="only jobs with a smaller id (paging)"
    )
    limit: int = Field(default=50, ge=1, le=500, description="page size")


class RunListQuery(BaseModel):
    """Filters of ``GET /v1/scoring-runs``."""

    model_config = ConfigDict(extra="forbid")

    model: ScoreModel | None = Field(default=None, description="only runs of this model")
    before: int | None = Field(
        default=None, ge=1, description="only runs with a smaller id (paging)"
    )
    limit: int = Field(default=50, ge=1, le=500, description="page size")
