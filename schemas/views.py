"""The ``reporting`` schema: stable, documented views for SQL consumers.

The views are the public interface of the database: tables may change between
releases, these keep their columns. The ``soundfleet_reader`` role gets USAGE on the
schema and SELECT on these views only. Each view is declared once here: its SQL (used
by the migrations) and a ``Table`` in :data:`reporting_metadata` (used by code that
reads them, e.g. ``soundfleet export``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Double, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import TypeEngine

REPORTING_SCHEMA = "reporting"
READER_ROLE = "soundfleet_reader"


@dataclass(frozen=True)
class View:
    """One reporting view: its name, documentation, SQL body and column types."""

    name: str
    doc: str
    sql: str
    columns: tuple[tuple[str, TypeEngine[Any]], ...]


_TS = DateTime(timezone=True)
_BIG = BigInteger()
_INT = Integer()
_TXT = Text()
_DBL: Double[float] = Double()
_BOOL = Boolean()

VIEWS: tuple[View, ...] = (
    View(
        "users",
        "Live users, latest fetched version; plan is the creator subscription.",
        """SELECT id AS user_id, permalink, username, full_name, description, city,
       country_code, created_at, followers_count, followings_count, track_count,
       playlist_count, likes_count, reposts_count, comments_count, verified, plan,
       fetched_at
  FROM public.users""",
        (
            ("user_id", _BIG),
            ("permalink", _TXT),
            ("username", _TXT),
            ("full_name", _TXT),
            ("description", _TXT),
            ("city", _TXT),
            ("country_code", _TXT),
            ("created_at", _TS),
            ("followers_count", _INT),
            ("followings_count", _INT),
            ("track_count", _INT),
            ("playlist_count", _INT),
            ("likes_count", _INT),
            ("reposts_count", _INT),
            ("comments_count", _INT),
            ("verified", _BOOL),
            ("plan", _TXT),
            ("fetched_at", _TS),
        ),
    ),
    View(
        "tracks",
        "Tracks with their uploader and latest counters.",
        """SELECT t.id AS track_id, t.user_id, u.permalink AS user_permalink, t.title,
       t.permalink, t.genre, t.created_at, t.duration_ms, t.playback_count,
       t.likes_count, t.reposts_count, t.comment_count, t.fetched_at
  FROM public.tracks t LEFT JOIN public.users u ON u.id = t.user_id""",
        (
            ("track_id", _BIG),
            ("user_id", _BIG),
            ("user_permalink", _TXT),
            ("title", _TXT),
            ("permalink", _TXT),
            ("genre", _TXT),
            ("created_at", _TS),
            ("duration_ms", _BIG),
            ("playback_count", _BIG),
            ("likes_count", _INT),
            ("reposts_count", _INT),
            ("comment_count", _INT),
            ("fetched_at", _TS),
        ),
    ),
    View(
        "follows",
        "Follow events (follower -> followee) with their event time and its source.",
        """SELECT follower_id, followee_id, event_time, time_source FROM public.follows""",
        (
            ("follower_id", _BIG),
            ("followee_id", _BIG),
            ("event_time", _TS),
            ("time_source", _TXT),
        ),
    ),
    View(
        "reposts",
        "Repost events per track: the reposting timeline.",
        """SELECT track_id, user_id, event_time, time_source FROM public.reposts""",
        (("track_id", _BIG), ("user_id", _BIG), ("event_time", _TS), ("time_source", _TXT)),
    ),
    View(
        "likes",
        "Like events per track.",
        """SELECT track_id, user_id, event_time, time_source FROM public.likes""",
        (("track_id", _BIG), ("user_id", _BIG), ("event_time", _TS), ("time_source", _TXT)),
    ),
    View(
        "track_stats",
        "Counter snapshots of tracks taken by play polls.",
        """SELECT track_id, observed_at, playback_count, likes_count, reposts_count,
       comment_count FROM public.track_stats""",
        (
            ("track_id", _BIG),
            ("observed_at", _TS),
            ("playback_count", _BIG),
            ("likes_count", _INT),
            ("reposts_count", _INT),
            ("comment_count", _INT),
        ),
    ),
    View(
        "jobs",
        "Crawl and scoring jobs with unit counts per state.",
        """SELECT j.id AS job_id, j.kind, j.state, j.created_at, j.finished_at, j.rows_landed,
       count(u.id) FILTER (WHERE u.state = 'queued') AS units_queued,
       count(u.id) FILTER (WHERE u.state = 'leased') AS units_leased,
       count(u.id) FILTER (WHERE u.state = 'done') AS units_done,
       count(u.id) FILTER (WHERE u.state = 'dead') AS units_dead
  FROM public.jobs j LEFT JOIN public.work_units u ON u.job_id = j.id
 GROUP BY j.id""",
        (
            ("job_id", _BIG),
            ("kind", _TXT),
            ("state", _TXT),
            ("created_at", _TS),
            ("finished_at", _TS),
            ("rows_landed", _BIG),
            ("units_queued", _BIG),
            ("units_leased", _BIG),
            ("units_done", _BIG),
            ("units_dead", _BIG),
        ),
    ),
    View(
        "backlog",
        "Work units waiting or in progress, fleet-wide (one row): what autoscalers read.",
        """SELECT count(*) FILTER (WHERE state = 'queued') AS units_queued,
       count(*) FILTER (WHERE state = 'queued' AND not_before <= now()) AS units_due,
       count(*) FILTER (WHERE state = 'leased') AS units_leased,
       count(*) FILTER (WHERE state = 'leased' AND lease_expires_at < now())
           AS units_lease_expired
  FROM public.work_units
 WHERE state IN ('queued', 'leased')""",
        (
            ("units_queued", _BIG),
            ("units_due", _BIG),
            ("units_leased", _BIG),
            ("units_lease_expired", _BIG),
        ),
    ),
    View(
        "scoring_runs",
        "Scoring runs with their parameters, metrics and durations.",
        """SELECT id AS run_id, model, model_version, params, state, metrics, durations,
       error, started_at, finished_at FROM public.scoring_runs""",
        (
            ("run_id", _BIG),
            ("model", _TXT),
            ("model_version", _TXT),
            ("params", JSONB()),
            ("state", _TXT),
            ("metrics", JSONB()),
            ("durations", JSONB()),
            ("error", _TXT),
            ("started_at", _TS),
            ("finished_at", _TS),
        ),
    ),
    View(
        "spam_scores",
        "Spam labels of the latest finished spam run.",
        """SELECT s.user_id, s.label, s.is_spam, s.probability, s.cluster, s.kind, s.run_id
  FROM public.spam_scores s
 WHERE s.run_id = (SELECT max(id) FROM public.scoring_runs
                    WHERE model = 'spam' AND state = 'done')""",
        (
            ("user_id", _BIG),
            ("label", _TXT),
            ("is_spam", _BOOL),
            ("probability", _DBL),
            ("cluster", _INT),
            ("kind", _TXT),
            ("run_id", _BIG),
        ),
    ),
    View(
        "network_stats",
        "Graph statistics of the latest finished network run, per scope.",
        """SELECT n.scope, n.artist_id, n.nodes, n.edges, n.clustering,
       n.assortativity_out_in, n.assortativity_in_in, n.assortativity_out_out,
       n.reciprocity, n.motif_counts, n.motif_z, n.run_id
  FROM public.network_stats n
 WHERE n.run_id = (SELECT max(id) FROM public.scoring_runs
                    WHERE model = 'network' AND state = 'done')""",
        (
            ("scope", _TXT),
            ("artist_id", _BIG),
            ("nodes", _BIG),
            ("edges", _BIG),
            ("clustering", _DBL),
            ("assortativity_out_in", _DBL),
            ("assortativity_in_in", _DBL),
            ("assortativity_out_out", _DBL),
            ("reciprocity", _DBL),
            ("motif_counts", ARRAY(BigInteger())),
            ("motif_z", ARRAY(Double())),
            ("run_id", _BIG),
        ),
    ),
    View(
        "virality_scores",
        "Virality predictions of every finished run, per track, model and hour.",
        """SELECT v.track_id, v.model, v.hours_after_upload, v.score, v.predicted_viral,
       v.predicted_hours_to_viral, v.run_id
  FROM public.virality_scores v JOIN public.scoring_runs r ON r.id = v.run_id
 WHERE r.state = 'done'""",
        (
            ("track_id", _BIG),
            ("model", _TXT),
            ("hours_after_upload", _DBL),
            ("score", _DBL),
            ("predicted_viral", _BOOL),
            ("predicted_hours_to_viral", _DBL),
            ("run_id", _BIG),
        ),
    ),
    View(
        "revisit_fits",
        "Phoenix-R fits of the latest finished revisit run, per track.",
        """SELECT f.track_id, f."window", f.n_points, f.n_shocks, f.shocks, f.rmse,
       f.audience_share, f.revisit_share, f.forecast, f.error, f.run_id
  FROM public.revisit_fits f
 WHERE f.run_id = (SELECT max(id) FROM public.scoring_runs
                    WHERE model = 'revisit' AND state = 'done')""",
        (
            ("track_id", _BIG),
            ("window", _TXT),
            ("n_points", _INT),
            ("n_shocks", _INT),
            ("shocks", JSONB()),
            ("rmse", _DBL),
            ("audience_share", _DBL),
            ("revisit_share", _DBL),
            ("forecast", JSONB()),
            ("error", _TXT),
            ("run_id", _BIG),
        ),
    ),
)

reporting_metadata = MetaData(schema=REPORTING_SCHEMA)
"""Tables standing for the views, for reading them with SQLAlchemy Core."""

for _view in VIEWS:
    Table(
        _view.name,
        reporting_metadata,
        *(Column(name, type_) for name, type_ in _view.columns),
        comment=_view.doc,
    )

VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in VIEWS)


def create_statements() -> list[str]:
    """DDL creating the reporting schema, its views and the reader role's grants."""
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {REPORTING_SCHEMA}"]
    for view in VIEWS:
        stmts.append(f"CREATE OR REPLACE VIEW {REPORTING_SCHEMA}.{view.name} AS\n{view.sql}")
        doc = view.doc.replace("'", "''")
        stmts.append(f"COMMENT ON VIEW {REPORTING_SCHEMA}.{view.name} IS '{doc}'")
    # Roles are cluster-wide: create it once, grant per database.
    stmts.append(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') "
        f"THEN CREATE ROLE {READER_ROLE} NOLOGIN; END IF; END $$"
    )
    stmts.append(f"GRANT USAGE ON SCHEMA {REPORTING_SCHEMA} TO {READER_ROLE}")
    stmts.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {REPORTING_SCHEMA} TO {READER_ROLE}")
    return stmts


def drop_statements() -> list[str]:
    """DDL undoing :func:`create_statements` in this database (the role stays: it is global)."""
    return [
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN "
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {REPORTING_SCHEMA} FROM {READER_ROLE}; "
        f"REVOKE ALL ON SCHEMA {REPORTING_SCHEMA} FROM {READER_ROLE}; END IF; END $$",
        f"DROP SCHEMA IF EXISTS {REPORTING_SCHEMA} CASCADE",
    ]
