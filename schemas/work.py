"""Work units and the coordinator <-> worker wire protocol.

A job expands into work units; a unit's ``kind`` says which handler serves it and its
``payload`` is one of the ``*Payload`` models below. Workers talk to the coordinator
with the request/response bodies of this module only (the crawler never imports the
coordinator, nor the reverse).

Fencing: every lease carries ``token`` (the unit's attempt number). Heartbeat, complete
and fail must send it back; a token that is no longer current gets HTTP 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.api_v2 import MAX_BATCH_IDS

UnitKind = Literal["user_range", "follow_list", "user_tracks", "track_list", "play_poll", "score"]
UNIT_KINDS: tuple[str, ...] = (
    "user_range",
    "follow_list",
    "user_tracks",
    "track_list",
    "play_poll",
    "score",
)
CRAWL_KINDS: tuple[str, ...] = UNIT_KINDS[:-1]

Direction = Literal["followers", "followings"]
TrackList = Literal["reposters", "likers"]
Timestamps = Literal["exact", "page"]
ScoreModel = Literal["network", "spam", "virality", "revisit"]

# Strict: JSON's true is not the id 1, nor "7" the id 7.
UserId = Annotated[int, Field(ge=1, le=2**53, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- unit payloads


class UserRangePayload(_Strict):
    """``GET /users/{id}`` for every id in ``[id_from, id_to)``; 404 -> ``user_ids_gone``."""

    id_from: UserId
    id_to: UserId


class FollowListPayload(_Strict):
    """One user's whole follower or following list (each listed user is upserted too).

    ``user_id`` is always numeric: a ``network`` job's permalink seeds are resolved by the
    coordinator at submission against the ``users`` table (an unknown permalink is a 422
    naming the seed), so workers never resolve permalinks for this unit.
    """

    user_id: UserId
    direction: Direction
    depth: int = Field(ge=0, le=3)
    expand: bool = Field(description="report listed users so the job can go one hop deeper")


class TimelineSpec(_Strict):
    """What a ``user_tracks`` unit chains: timelines of every track it finds."""

    lists: tuple[TrackList, ...] = ("reposters",)
    timestamps: Timestamps = "exact"


class UserTracksPayload(_Strict):
    """One user's tracks; with ``then_timelines`` the job queues each track's lists."""

    user_id: UserId
    then_timelines: TimelineSpec | None = None


class TrackListPayload(_Strict):
    """One track's reposters or likers with event times.

    ``exact`` pages with ``limit=1`` so each item's time comes from its own cursor;
    ``page`` uses ``limit=200`` and bounds each page's items by the page cursor.
    """

    track_id: UserId
    list: TrackList
    timestamps: Timestamps = "exact"


class PlayPollPayload(_Strict):
    """One snapshot of up to 50 tracks' counters (scheduled with ``not_before``).

    Asked for in one ``/tracks?ids=`` request, the batch form the web client uses. A
    payload with one ``track_id`` (units queued before batches) is the batch of one.
    """

    track_ids: tuple[UserId, ...] = Field(default=(), max_length=MAX_BATCH_IDS)
    track_id: UserId | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PlayPollPayload:
        if bool(self.track_ids) == (self.track_id is not None):
            raise ValueError("give track_ids (1 to 50) or a single track_id")
        return self

    @property
    def ids(self) -> tuple[int, ...]:
        """The tracks of this snapshot."""
        if self.track_id is not None:
            return (self.track_id,)
        return self.track_ids


class ScorePayload(_Strict):
    """One scoring run."""

    model: ScoreModel
    params: dict[str, Any] = Field(default_factory=dict)


PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    "user_range": UserRangePayload,
    "follow_list": FollowListPayload,
    "user_tracks": UserTracksPayload,
    "track_list": TrackListPayload,
    "play_poll": PlayPollPayload,
    "score": ScorePayload,
}


# ---------------------------------------------------------------- lease protocol


class FleetAdvice(BaseModel):
    """Politeness advice sent with every lease and heartbeat response."""

    rate_share_rps: float = Field(description="this worker's share of the fleet budget")
    paused_until: datetime | None = Field(
        default=None, description="a fleet-wide Retry-After: send nothing before this"
    )
    client_id: str | None = Field(default=None, description="the fleet's current client_id")


class LeaseRequest(_Strict):
    """``POST /v1/leases``: claim up to ``max_units`` units of the given kinds."""

    worker_id: str = Field(min_length=1, max_length=200)
    kinds: tuple[UnitKind, ...] = Field(min_length=1)
    max_units: int = Field(default=1, ge=1, le=500)
    hostname: str | None = Field(default=None, max_length=255)
    pid: int | None = Field(default=None, ge=0)
    complete: list[CompleteItem] = Field(
        default_factory=list,
        max_length=500,
        description=(
            "units this worker finished, completed before the claim in the same call "
            "(saves one round trip per batch); outcomes come back in `completed`"
        ),
    )
    wait_s: float = Field(
        default=0.0,
        ge=0,
        le=30,
        description=(
            "long-poll: when no unit is leasable, hold the call up to this many seconds "
            "and claim as soon as a job is submitted or a unit released (0: answer at once)"
        ),
    )


class Lease(BaseModel):
    """One leased unit."""

    unit_id: int
    job_id: int
    kind: UnitKind
    payload: dict[str, Any]
    token: int = Field(description="fencing token: send it back with every call on this unit")
    cursor: str | None = Field(description="resume point saved by an earlier holder")
    lease_expires_at: datetime


class LeaseResponse(BaseModel):
    """Units claimed (possibly none) and the fleet's advice."""

    units: list[Lease]
    fleet: FleetAdvice
    completed: list[UnitStateResponse] = Field(
        default_factory=list, description="outcome of each `complete` item: done or stale"
    )


class HeartbeatRequest(_Strict):
    """``POST /v1/leases/{unit}/heartbeat``: extend the lease, checkpoint the cursor."""

    worker_id: str
    token: int
    cursor: str | None = None
    rows: int = Field(default=0, ge=0, description="rows landed so far by this attempt")


class HeartbeatResponse(BaseModel):
    """The lease's new expiry; ``cancel`` when the job was cancelled meanwhile."""

    lease_expires_at: datetime
    cancel: bool = False
    fleet: FleetAdvice


class CompleteRequest(_Strict):
    """``POST /v1/leases/{unit}/complete``: the unit's rows are committed."""

    worker_id: str
    token: int
    rows: int = Field(default=0, ge=0)
    discovered_user_ids: list[int] = Field(
        default_factory=list, description="follow_list: users to expand one hop deeper"
    )
    discovered_track_ids: list[int] = Field(
        default_factory=list, description="user_tracks: tracks whose timelines to queue"
    )


class CompleteItem(_Strict):
    """One unit of a batch completion."""

    unit_id: int
    token: int
    rows: int = Field(default=0, ge=0)
    discovered_user_ids: list[int] = Field(default_factory=list)
    discovered_track_ids: list[int] = Field(default_factory=list)


class BatchCompleteRequest(_Strict):
    """``POST /v1/leases/complete``: complete many units in one call (one transaction).

    Each item is fenced on its own: a stale token refuses that item only (``stale`` in
    the response), never the whole batch.
    """

    worker_id: str
    items: list[CompleteItem] = Field(min_length=1, max_length=500)


class BatchCompleteResponse(BaseModel):
    """Per item of a batch completion: the unit's state, or ``stale``."""

    results: list[UnitStateResponse]


class FailRequest(_Strict):
    """``POST /v1/leases/{unit}/fail``: retried with backoff unless ``retryable`` is false."""

    worker_id: str
    token: int
    error: str = Field(max_length=4000)
    retryable: bool = True
    rows: int = Field(default=0, ge=0, description="rows this attempt landed before failing")
    cursor: str | None = Field(
        default=None, description="resume point after the last landed batch (kept for the retry)"
    )


class ReleaseRequest(_Strict):
    """``POST /v1/leases/{unit}/release``: give a unit back untouched (SIGTERM drain)."""

    worker_id: str
    token: int
    cursor: str | None = None
    rows: int = Field(default=0, ge=0, description="rows this attempt landed")


class UnitStateResponse(BaseModel):
    """What happened to the unit after complete/fail/release."""

    unit_id: int
    state: str


# ---------------------------------------------------------------- client ids and politeness


class ClientIdReport(_Strict):
    """``POST /v1/client-ids``: a worker discovered a client_id."""

    value: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    source: Literal["hydration", "bundles", "browser", "manual"]
    worker_id: str


class InvalidateRequest(_Strict):
    """``POST /v1/client-ids/{value}/invalidate``: the platform answered 401/403 to it."""

    worker_id: str


class ClientIdState(BaseModel):
    """The fleet's client_id; ``discover`` tells this worker to run the one discovery."""

    client_id: str | None
    discover: bool = Field(description="true for exactly one worker while none is valid")
    retry_after_s: float = Field(default=1.0, description="when neither: ask again after this long")


class BlockReport(_Strict):
    """``POST /v1/fleet/block``: the platform's bot protection refused this worker."""

    worker_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500, description="what the 403 looked like")


class BlockState(BaseModel):
    """The fleet's answer to a block: how long everyone pauses."""

    new: bool = Field(description="false when the report joined a pause already running")
    level: int = Field(description="doublings of the base pause so far in this episode")
    blocked_since: datetime | None = Field(description="start of this block episode")
    block_until: datetime | None = Field(description="end of the pause: the next try")
    wait_s: float = Field(description="seconds from now until block_until")


class ThrottleReport(_Strict):
    """``POST /v1/fleet/throttle``: the platform answered 429."""

    worker_id: str
    retry_after_s: float | None = Field(default=None, ge=0, le=3600)


class ClientIdQuery(BaseModel):
    """``GET /v1/client-ids/current``'s query."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str | None = Field(
        default=None, description="the asking worker (needed to be granted the discovery)"
    )


class AdviceQuery(BaseModel):
    """``GET /v1/fleet/advice``'s query."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(description="the asking worker")
