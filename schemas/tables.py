"""SQLAlchemy Core metadata of every soundfleet table.

Three groups share one ``MetaData``: platform data (what the crawler lands), the work
queue (what the coordinator leases), and scores (what scoring runs write). Views of the
``reporting`` schema are in :mod:`schemas.views`.

Keys are chosen so that every write is idempotent: re-landing a work unit hits the same
primary or unique key and changes nothing. Follow, repost and like *events* are unique
on (edge, event time): the same pair following twice at two times is two rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _tz(name: str, **kw: object) -> Column[object]:
    return Column(name, DateTime(timezone=True), **kw)  # type: ignore[arg-type]


NOW = text("now()")

# How an event's time was obtained: from the item itself, from a page cursor with one
# item per page (exact), or from a page cursor bounding a whole page (page).
TIME_SOURCES = ("item", "exact", "page", "none")
_time_source_check = "time_source IN ('item', 'exact', 'page', 'none')"

# --------------------------------------------------------------------------- platform

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("permalink", Text),
    Column("username", Text),
    Column("full_name", Text),
    Column("description", Text),
    Column("city", Text),
    Column("country_code", Text),
    _tz("created_at"),
    _tz("last_modified"),
    Column("followers_count", Integer),
    Column("followings_count", Integer),
    Column("track_count", Integer),
    Column("playlist_count", Integer),
    Column("likes_count", Integer),
    Column("playlist_likes_count", Integer),
    Column("reposts_count", Integer),
    Column("comments_count", Integer),
    Column("groups_count", Integer),
    Column("verified", Boolean),
    Column("plan", Text, comment="creator_subscription product id (free, creator-pro, ...)"),
    Column("avatar_url", Text),
    Column("permalink_url", Text),
    _tz("fetched_at", nullable=False, comment="when the crawler fetched this version"),
    comment="One row per live user, the latest fetched version.",
)

web_profiles = Table(
    "web_profiles",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("url", Text, primary_key=True),
    Column("network", Text),
    Column("title", Text),
    Column("username", Text),
    _tz("fetched_at", nullable=False),
    comment="Links a user lists on the profile (the spam model's URL features).",
)

user_ids_gone = Table(
    "user_ids_gone",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _tz("checked_at", nullable=False),
    comment="Ids that answered 404: deleted or never assigned.",
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, nullable=False),
    Column("title", Text),
    Column("permalink", Text),
    Column("permalink_url", Text),
    Column("description", Text),
    Column("genre", Text),
    Column("tag_list", Text),
    _tz("created_at"),
    _tz("last_modified"),
    Column("duration_ms", BigInteger),
    Column("playback_count", BigInteger),
    Column("likes_count", Integer),
    Column("reposts_count", Integer),
    Column("comment_count", Integer),
    Column("download_count", Integer),
    Column("public", Boolean),
    Column("sharing", Text),
    _tz("fetched_at", nullable=False),
    Index(None, "user_id"),
    comment="One row per track, the latest fetched version.",
)

follows = Table(
    "follows",
    metadata,
    Column("follower_id", BigInteger, nullable=False),
    Column("followee_id", BigInteger, nullable=False),
    _tz("event_time", nullable=False),
    Column("time_source", Text, nullable=False),
    _tz("fetched_at", nullable=False),
    UniqueConstraint("follower_id", "followee_id", "event_time"),
    CheckConstraint(_time_source_check, name="time_source"),
    Index(None, "followee_id", "event_time"),
    comment="Follow events; repeated events between one pair are kept as data.",
)

reposts = Table(
    "reposts",
    metadata,
    Column("track_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    _tz("event_time", nullable=False),
    Column("time_source", Text, nullable=False),
    _tz("fetched_at", nullable=False),
    UniqueConstraint("track_id", "event_time", "user_id"),
    CheckConstraint(_time_source_check, name="time_source"),
    Index(None, "user_id"),
    comment="Repost events of a track, with their time (the timeline).",
)

likes = Table(
    "likes",
    metadata,
    Column("track_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    _tz("event_time", nullable=False),
    Column("time_source", Text, nullable=False),
    _tz("fetched_at", nullable=False),
    UniqueConstraint("track_id", "event_time", "user_id"),
    CheckConstraint(_time_source_check, name="time_source"),
    Index(None, "user_id"),
    comment="Like events of a track, with their time.",
)

skipped_items = Table(
    "skipped_items",
    metadata,
    Column("page_url", Text, primary_key=True, comment="the list page, without client_id"),
    Column("item_index", Integer, primary_key=True, autoincrement=False),
    Column("unit_id", BigInteger),
    Column("reason", Text, nullable=False),
    Column("raw", JSONB, comment="the item as the platform sent it"),
    _tz("fetched_at", nullable=False),
    comment="List items no model fits (a deleted user, an unknown kind): skipped, kept raw.",
)

track_stats = Table(
    "track_stats",
    metadata,
    Column("track_id", BigInteger, primary_key=True, autoincrement=False),
    _tz("observed_at", primary_key=True, comment="platform time of the snapshot"),
    Column("playback_count", BigInteger),
    Column("likes_count", Integer),
    Column("reposts_count", Integer),
    Column("comment_count", Integer),
    Column("download_count", Integer),
    comment="Snapshots of a track's counters taken by play_poll units.",
)

# ------------------------------------------------------------------------------ queue

JOB_KINDS = ("user_sweep", "network", "user_tracks", "track_timelines", "play_poll", "score")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
UNIT_STATES = ("queued", "leased", "done", "failed", "dead", "cancelled")
ROLES = ("researcher", "worker", "admin")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True, comment="sha256 of the key"),
    Column("prefix", Text, nullable=False, comment="first characters, for display"),
    _tz("created_at", nullable=False, server_default=NOW),
    _tz("revoked_at"),
    CheckConstraint(_in("role", ROLES), name="role"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("state", Text, nullable=False, server_default="queued"),
    Column("owner_key_id", BigInteger, ForeignKey("api_keys.id"), nullable=True),
    Column("priority", SmallInteger, nullable=False, server_default="0"),
    Column("rows_landed", BigInteger, nullable=False, server_default="0"),
    Column("error", Text),
    _tz("created_at", nullable=False, server_default=NOW),
    _tz("updated_at", nullable=False, server_default=NOW),
    _tz("finished_at"),
    CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
    CheckConstraint(_in("state", JOB_STATES), name="state"),
    Index(None, "owner_key_id", "created_at"),
)

work_units = Table(
    "work_units",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column(
        "dedup_key",
        Text,
        nullable=False,
        comment="unique per job: the same target is never queued twice in one job",
    ),
    Column("depth", SmallInteger, nullable=False, server_default="0"),
    Column("state", Text, nullable=False, server_default="queued"),
    Column("priority", SmallInteger, nullable=False, server_default="0"),
    Column("attempt", Integer, nullable=False, server_default="0", comment="fencing token"),
    Column("max_attempts", Integer, nullable=False, server_default="8"),
    _tz("not_before", nullable=False, server_default=NOW),
    _tz("lease_expires_at"),
    Column("worker_id", Text),
    Column("cursor", Text, comment="resume point (next_href) saved with each heartbeat"),
    Column("progress", JSONB),
    Column("rows_landed", BigInteger, nullable=False, server_default="0"),
    Column("last_error", Text),
    _tz("created_at", nullable=False, server_default=NOW),
    _tz("updated_at", nullable=False, server_default=NOW),
    _tz("done_at"),
    UniqueConstraint("job_id", "dedup_key"),
    CheckConstraint(_in("state", UNIT_STATES), name="state"),
    # The claim query scans these two partial indexes only.
    Index(
        "ix_work_units_claimable",
        "priority",
        "not_before",
        "id",
        postgresql_where=text("state = 'queued'"),
    ),
    Index(
        "ix_work_units_leased_expiry",
        "lease_expires_at",
        postgresql_where=text("state = 'leased'"),
    ),
    # The dashboard's "dead units" table.
    Index(
        "ix_work_units_dead",
        "updated_at",
        postgresql_where=text("state = 'dead'"),
    ),
    Index(None, "job_id", "state"),
)

workers = Table(
    "workers",
    metadata,
    Column("id", Text, primary_key=True, comment="unique per process start"),
    Column("hostname", Text),
    Column("pid", Integer),
    Column("kinds", ARRAY(Text), nullable=False),
    Column("state", Text, nullable=False, server_default="active"),
    _tz("started_at", nullable=False, server_default=NOW),
    _tz("last_seen_at", nullable=False, server_default=NOW),
    Column("stats", JSONB),
)

client_ids = Table(
    "client_ids",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("value", Text, nullable=False, unique=True),
    Column("source", Text, nullable=False, comment="hydration, bundles or browser"),
    Column("reported_by", Text),
    _tz("discovered_at", nullable=False, server_default=NOW),
    _tz("invalidated_at"),
)

fleet_state = Table(
    "fleet_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("budget_rps", Double, nullable=False, comment="current fleet-wide request budget"),
    Column("max_budget_rps", Double, nullable=False),
    _tz("paused_until"),
    Column("discovery_worker", Text, comment="the one worker allowed to rediscover now"),
    _tz("discovery_until"),
    Column("throttles", BigInteger, nullable=False, server_default="0"),
    _tz("updated_at", nullable=False, server_default=NOW),
    _tz("blocked_since", comment="start of the current bot-protection block episode"),
    _tz("block_until", comment="end of the current block pause (the next try)"),
    Column("block_level", Integer, nullable=False, server_default="0", comment="doublings"),
    Column("blocks", BigInteger, nullable=False, server_default="0"),
    Column("block_reason", Text),
    _tz("last_discovery_at", comment="when the last client_id rediscovery was granted"),
    CheckConstraint("id = 1", name="singleton"),
    comment="One row: the fleet's politeness budget, block state and discovery lock.",
)

# ----------------------------------------------------------------------------- scores

scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("model", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("state", Text, nullable=False, server_default="running"),
    Column("metrics", JSONB),
    Column("durations", JSONB),
    Column("error", Text, comment="why the run could not score, if it could not"),
    Column("job_id", BigInteger, ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("unit_id", BigInteger),
    _tz("started_at", nullable=False, server_default=NOW),
    _tz("finished_at"),
    CheckConstraint("model IN ('network', 'spam', 'virality', 'revisit')", name="model"),
    CheckConstraint("state IN ('running', 'done', 'failed')", name="state"),
    UniqueConstraint("unit_id"),
)


def _run_id() -> Column[int]:
    return Column(
        "run_id",
        BigInteger,
        ForeignKey("scoring_runs.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )


spam_scores = Table(
    "spam_scores",
    metadata,
    _run_id(),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("label", Text, nullable=False, comment="spam or the cluster's name"),
    Column("is_spam", Boolean, nullable=False),
    Column("probability", Double, nullable=False),
    Column("cluster", Integer, nullable=False),
    Column("kind", Text, comment="link, fake or churn, for users flagged as spam"),
)

network_stats = Table(
    "network_stats",
    metadata,
    _run_id(),
    Column("scope", Text, primary_key=True, comment="'global' or 'ego:<artist id>'"),
    Column("artist_id", BigInteger),
    Column("nodes", BigInteger, nullable=False),
    Column("edges", BigInteger, nullable=False),
    Column("clustering", Double),
    Column("assortativity_out_in", Double),
    Column("assortativity_in_in", Double),
    Column("assortativity_out_out", Double),
    Column("reciprocity", Double),
    Column("motif_counts", ARRAY(BigInteger)),
    Column("motif_z", ARRAY(Double)),
)

user_graph_stats = Table(
    "user_graph_stats",
    metadata,
    _run_id(),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("pagerank", Double, nullable=False),
    Column("in_degree", Integer, nullable=False),
    Column("out_degree", Integer, nullable=False),
    Column("max_follow_multiplicity", Integer, nullable=False),
    Column("repeated_follows", Integer, nullable=False),
    comment="Per-user graph figures of a network run (also CrowdCast's PageRank cache).",
)

virality_scores = Table(
    "virality_scores",
    metadata,
    _run_id(),
    Column("track_id", BigInteger, primary_key=True, autoincrement=False),
    Column("model", Text, primary_key=True),
    Column("hours_after_upload", Double, primary_key=True, comment="prediction time"),
    Column("score", Double, nullable=False),
    Column("predicted_viral", Boolean, nullable=False),
    Column("predicted_hours_to_viral", Double),
)

revisit_fits = Table(
    "revisit_fits",
    metadata,
    _run_id(),
    Column("track_id", BigInteger, primary_key=True, autoincrement=False),
    Column("window", Text, nullable=False, comment="hourly or daily"),
    Column("n_points", Integer, nullable=False),
    Column("n_shocks", Integer),
    Column("shocks", JSONB, comment="per shock: start, s0, beta, gamma, omega"),
    Column("period", JSONB),
    Column("rmse", Double),
    Column("audience_share", Double),
    Column("revisit_share", Double),
    Column("forecast", JSONB),
    Column("error", Text, comment="why this track could not be fitted"),
)
