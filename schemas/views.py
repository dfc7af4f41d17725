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
    """One reporting view: its name, documentation, SQL body and columns.

    Each column is (name, type, what it holds): the text becomes the column's comment
    in the database and its line in the data dictionary.
    """

    name: str
    doc: str
    sql: str
    columns: tuple[tuple[str, TypeEngine[Any], str], ...]


_TS = DateTime(timezone=True)
_BIG = BigInteger()
_INT = Integer()
_TXT = Text()
_DBL: Double[float] = Double()
_BOOL = Boolean()

VIEWS: tuple[View, ...] = (
    View(
        "users",
        "Live users, latest fetched version: ids a later check found gone (404) are left"
        " out; plan is the creator subscription.",
        """SELECT u.id AS user_id, u.permalink, u.username, u.full_name, u.description,
       u.city, u.country_code, u.created_at, u.followers_count, u.followings_count,
       u.track_count, u.playlist_count, u.likes_count, u.reposts_count,
       u.comments_count, u.verified, u.plan, u.fetched_at
  FROM public.users u
 WHERE NOT EXISTS (SELECT 1 FROM public.user_ids_gone g
                    WHERE g.id = u.id AND g.checked_at >= u.fetched_at)""",
        (
            ("user_id", _BIG, "SoundCloud user id"),
            ("permalink", _TXT, "the profile's URL slug (soundcloud.com/<permalink>)"),
            ("username", _TXT, "display name"),
            ("full_name", _TXT, "first and last name as the user gave them, if any"),
            ("description", _TXT, "profile bio text, as written"),
            ("city", _TXT, "city on the profile, if given"),
            ("country_code", _TXT, "ISO 3166-1 alpha-2 country on the profile, if given"),
            ("created_at", _TS, "when the account was made (UTC)"),
            ("followers_count", _INT, "followers, as the platform counted them when fetched"),
            ("followings_count", _INT, "accounts this user follows, as counted when fetched"),
            ("track_count", _INT, "public tracks, as counted when fetched"),
            ("playlist_count", _INT, "public playlists, as counted when fetched"),
            ("likes_count", _INT, "tracks this user liked, as counted when fetched"),
            ("reposts_count", _INT, "reposts made by this user, as counted when fetched"),
            ("comments_count", _INT, "comments written by this user, as counted when fetched"),
            ("verified", _BOOL, "the platform's verified badge"),
            (
                "plan",
                _TXT,
                "creator subscription product: free, creator-pro or creator-pro-unlimited",
            ),
            ("fetched_at", _TS, "when the crawler fetched this version of the user (UTC)"),
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
            ("track_id", _BIG, "SoundCloud track id"),
            ("user_id", _BIG, "uploader's user id"),
            (
                "user_permalink",
                _TXT,
                "uploader's permalink (NULL when the uploader is not crawled)",
            ),
            ("title", _TXT, "track title"),
            ("permalink", _TXT, "the track's URL slug under its uploader"),
            ("genre", _TXT, "genre tag chosen by the uploader"),
            ("created_at", _TS, "upload time (UTC)"),
            ("duration_ms", _BIG, "length in milliseconds"),
            ("playback_count", _BIG, "plays, as counted when fetched"),
            ("likes_count", _INT, "likes, as counted when fetched"),
            ("reposts_count", _INT, "reposts, as counted when fetched"),
            ("comment_count", _INT, "comments, as counted when fetched"),
            ("fetched_at", _TS, "when the crawler fetched this version of the track (UTC)"),
        ),
    ),
    View(
        "follows",
        "Follow events (follower -> followee) with their event time and its source.",
        """SELECT follower_id, followee_id, event_time, time_source FROM public.follows""",
        (
            ("follower_id", _BIG, "the user who follows"),
            ("followee_id", _BIG, "the user followed"),
            ("event_time", _TS, "when the follow happened, as precise as time_source says"),
            (
                "time_source",
                _TXT,
                (
                    "where event_time comes from: item (the item's own time), exact (a one-item "
                    "page's cursor), page (the bound of a page of up to 200 items) or none"
                ),
            ),
        ),
    ),
    View(
        "reposts",
        "Repost events per track: the reposting timeline.",
        """SELECT track_id, user_id, event_time, time_source FROM public.reposts""",
        (
            ("track_id", _BIG, "the track reposted"),
            ("user_id", _BIG, "the user who reposted it"),
            ("event_time", _TS, "when the repost happened, as precise as time_source says"),
            ("time_source", _TXT, "item, exact (one-item page cursor), page (page bound) or none"),
        ),
    ),
    View(
        "likes",
        "Like events per track.",
        """SELECT track_id, user_id, event_time, time_source FROM public.likes""",
        (
            ("track_id", _BIG, "the track liked"),
            ("user_id", _BIG, "the user who liked it"),
            ("event_time", _TS, "when the like happened, as precise as time_source says"),
            ("time_source", _TXT, "item, exact (one-item page cursor), page (page bound) or none"),
        ),
    ),
    View(
        "track_stats",
        "Counter snapshots of tracks taken by play polls.",
        """SELECT track_id, observed_at, playback_count, likes_count, reposts_count,
       comment_count FROM public.track_stats""",
        (
            ("track_id", _BIG, "the track polled"),
            ("observed_at", _TS, "platform time of the snapshot (UTC)"),
            ("playback_count", _BIG, "plays at observed_at"),
            ("likes_count", _INT, "likes at observed_at"),
            ("reposts_count", _INT, "reposts at observed_at"),
            ("comment_count", _INT, "comments at observed_at"),
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
            ("job_id", _BIG, "job id (as in the API and the CLI)"),
            ("kind", _TXT, "user_sweep, network, user_tracks, track_timelines, play_poll or score"),
            ("state", _TXT, "queued, running, done, failed or cancelled"),
            ("created_at", _TS, "when the job was submitted (UTC)"),
            ("finished_at", _TS, "when its last unit ended (UTC); NULL while running"),
            ("rows_landed", _BIG, "rows its units landed, summed"),
            ("units_queued", _BIG, "units waiting for a worker"),
            ("units_leased", _BIG, "units a worker holds now"),
            ("units_done", _BIG, "units finished"),
            (
                "units_dead",
                _BIG,
                "units that failed every retry (see the API for their last error)",
            ),
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
            ("units_queued", _BIG, "units waiting, fleet-wide"),
            ("units_due", _BIG, "waiting units whose not_before has passed (workable now)"),
            ("units_leased", _BIG, "units held by workers"),
            (
                "units_lease_expired",
                _BIG,
                "held units whose lease ran out (a worker died; they will be re-leased)",
            ),
        ),
    ),
    View(
        "scoring_runs",
        "Scoring runs with their parameters, metrics and durations.",
        """SELECT id AS run_id, model, model_version, params, state, metrics, durations,
       error, started_at, finished_at FROM public.scoring_runs""",
        (
            ("run_id", _BIG, "scoring run id"),
            ("model", _TXT, "network, spam, virality or revisit"),
            ("model_version", _TXT, "version of the model's code that ran"),
            ("params", JSONB(), "the run's parameters (JSON), defaults filled in"),
            ("state", _TXT, "running, done or failed"),
            (
                "metrics",
                JSONB(),
                "what the run measured and reported (JSON; keys per model, see the README)",
            ),
            ("durations", JSONB(), "seconds per step (JSON)"),
            ("error", _TXT, "why a failed run could not score"),
            ("started_at", _TS, "when the run started (UTC)"),
            ("finished_at", _TS, "when it ended (UTC); NULL while running"),
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
            ("user_id", _BIG, "the user scored"),
            (
                "label",
                _TXT,
                (
                    "spam, or the name of the non-spam group it belongs to (superstars, musicians, "
                    "fans, lurkers)"
                ),
            ),
            ("is_spam", _BOOL, "flagged as spam (probability >= 0.5)"),
            ("probability", _DBL, "the MLP's probability of a spam group, 0..1"),
            (
                "cluster",
                _INT,
                "K-Means cluster index within the run (see the run's metrics for names)",
            ),
            (
                "kind",
                _TXT,
                (
                    "link (mass following), fake (made in batches, following in lockstep) or churn "
                    "(repeated follows); NULL when not spam"
                ),
            ),
            ("run_id", _BIG, "the spam run (the latest finished one)"),
        ),
    ),
    View(
        "user_graph_stats",
        "Per-user graph figures of the latest finished network run.",
        """SELECT g.user_id, g.pagerank, g.in_degree, g.out_degree,
       g.max_follow_multiplicity, g.repeated_follows, g.run_id
  FROM public.user_graph_stats g
 WHERE g.run_id = (SELECT max(id) FROM public.scoring_runs
                    WHERE model = 'network' AND state = 'done')""",
        (
            ("user_id", _BIG, "the user"),
            (
                "pagerank",
                _DBL,
                "PageRank on the follow graph (damping as the run's params say; sums to 1)",
            ),
            ("in_degree", _INT, "distinct crawled followers"),
            ("out_degree", _INT, "distinct crawled followees"),
            (
                "max_follow_multiplicity",
                _INT,
                "most follow events this user made towards one account",
            ),
            (
                "repeated_follows",
                _INT,
                (
                    "follow events beyond the first, summed over the accounts it followed (follow "
                    "churn)"
                ),
            ),
            ("run_id", _BIG, "the network run (the latest finished one)"),
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
            (
                "scope",
                _TXT,
                "global (the whole crawled graph) or ego:<artist id> (an artist's neighbourhood)",
            ),
            ("artist_id", _BIG, "the ego network's centre; NULL for global"),
            ("nodes", _BIG, "users in the scope"),
            ("edges", _BIG, "distinct follow pairs in the scope"),
            (
                "clustering",
                _DBL,
                "transitivity: closed over connected triples, edges taken undirected",
            ),
            (
                "assortativity_out_in",
                _DBL,
                (
                    "Pearson correlation of the follower's out-degree with the followee's "
                    "in-degree over edges"
                ),
            ),
            ("assortativity_in_in", _DBL, "correlation of in-degrees across edges"),
            ("assortativity_out_out", _DBL, "correlation of out-degrees across edges"),
            ("reciprocity", _DBL, "share of follow pairs followed back"),
            (
                "motif_counts",
                ARRAY(BigInteger()),
                (
                    "counts of the 13 connected three-node motifs, in triad-census order 021D, "
                    "021U, 021C, 111D, 111U, 030T, 030C, 201, 120D, 120U, 120C, 210, 300"
                ),
            ),
            (
                "motif_z",
                ARRAY(Double()),
                (
                    "z-scores of motif_counts against degree-preserving randomisations (NULL where "
                    "they did not vary)"
                ),
            ),
            ("run_id", _BIG, "the network run (the latest finished one)"),
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
            ("track_id", _BIG, "the track predicted"),
            (
                "model",
                _TXT,
                "crowdcast, sansnet or a baseline (szabo_huberman, seismic, logistic, nodecount)",
            ),
            ("hours_after_upload", _DBL, "when the prediction is made, in hours after upload"),
            (
                "score",
                _DBL,
                (
                    "the model's ranking score (higher = more likely viral); clipped to +-1e6 "
                    "where a model's score diverges"
                ),
            ),
            ("predicted_viral", _BOOL, "the model's decision at that hour"),
            (
                "predicted_hours_to_viral",
                _DBL,
                (
                    "hours after upload the model expects the track to turn viral, where it "
                    "predicts one"
                ),
            ),
            ("run_id", _BIG, "the virality run"),
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
            ("track_id", _BIG, "the track fitted"),
            ("window", _TXT, "hourly or daily plays"),
            ("n_points", _INT, "windows in the fitted series"),
            ("n_shocks", _INT, "shocks chosen by MDL"),
            (
                "shocks",
                JSONB(),
                "per shock: start window, s0 (audience), beta, gamma, omega (revisit rate) (JSON)",
            ),
            ("rmse", _DBL, "root mean squared error of the fit, in plays per window"),
            ("audience_share", _DBL, "share of fitted plays from first listens"),
            ("revisit_share", _DBL, "share of fitted plays from people coming back"),
            ("forecast", JSONB(), "observed and fitted series and the forecast (JSON)"),
            ("error", _TXT, "why this track could not be fitted"),
            ("run_id", _BIG, "the revisit run (the latest finished one)"),
        ),
    ),
)

reporting_metadata = MetaData(schema=REPORTING_SCHEMA)
"""Tables standing for the views, for reading them with SQLAlchemy Core."""

for _view in VIEWS:
    Table(
        _view.name,
        reporting_metadata,
        *(Column(name, type_, comment=doc) for name, type_, doc in _view.columns),
        comment=_view.doc,
    )

VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in VIEWS)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_statements() -> list[str]:
    """DDL creating the reporting schema, its views and the reader role's grants."""
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {REPORTING_SCHEMA}"]
    for view in VIEWS:
        stmts.append(f"CREATE OR REPLACE VIEW {REPORTING_SCHEMA}.{view.name} AS\n{view.sql}")
        stmts.append(f"COMMENT ON VIEW {REPORTING_SCHEMA}.{view.name} IS {_literal(view.doc)}")
        for column, _, doc in view.columns:
            stmts.append(
                f'COMMENT ON COLUMN {REPORTING_SCHEMA}.{view.name}."{column}" IS {_literal(doc)}'
            )
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
