"""Parsed api-v2 payloads as rows of the platform tables.

Pure functions, no I/O: each returns a dict keyed by the columns of one table in
:mod:`schemas.tables`, ready for :func:`runtime.sink.write_rows` (:func:`user_record`:
the same row as a tuple, for :func:`runtime.sink.write_records`). ``fetched_at`` is
passed in (the time of the fetch), never taken from the clock here, so that landing the
same fetch twice writes identical rows.
"""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter
from typing import Any, Literal

from schemas.api_v2 import Track, User, WebProfile

Row = dict[str, Any]
TimeSource = Literal["item", "exact", "page", "none"]


USER_COLUMNS: tuple[str, ...] = (
    "id",
    "permalink",
    "username",
    "full_name",
    "description",
    "city",
    "country_code",
    "created_at",
    "last_modified",
    "followers_count",
    "followings_count",
    "track_count",
    "playlist_count",
    "likes_count",
    "playlist_likes_count",
    "reposts_count",
    "comments_count",
    "groups_count",
    "verified",
    "plan",
    "avatar_url",
    "permalink_url",
    "fetched_at",
)
"""The ``users`` columns in the order of :func:`user_record`'s tuple."""


# Every users column but ``plan`` (a property) and the fetch time is a field of the user
# model of that name, read from the instance's ``__dict__`` (where pydantic keeps the
# fields) by one C call per side of ``plan``: a third of the cost of 22 attribute reads.
_PLAN = USER_COLUMNS.index("plan")
_BEFORE_PLAN = itemgetter(*USER_COLUMNS[:_PLAN])
_AFTER_PLAN = itemgetter(*USER_COLUMNS[_PLAN + 1 : -1])


def user_record(user: User, fetched_at: datetime) -> tuple[Any, ...]:
    """A ``users`` row as a tuple in :data:`USER_COLUMNS` order.

    For :func:`runtime.sink.write_records`: a sweep lands thousands of users a
    second, and a tuple of plain values costs less than a dict to build and lay out,
    and (holding no containers) the garbage collector stops tracking it.
    """
    fields = user.__dict__
    return (*_BEFORE_PLAN(fields), user.plan, *_AFTER_PLAN(fields), fetched_at)


def user_row(user: User, fetched_at: datetime) -> Row:
    """A ``users`` row from a full user object."""
    return dict(zip(USER_COLUMNS, user_record(user, fetched_at), strict=True))


GONE_COLUMNS: tuple[str, ...] = ("id", "checked_at")
"""The ``user_ids_gone`` columns, in the order of a laid-out ``(id, checked_at)`` record."""


def gone_row(user_id: int, checked_at: datetime) -> Row:
    """A ``user_ids_gone`` row for an id that answered 404."""
    return {"id": user_id, "checked_at": checked_at}


def track_row(track: Track, fetched_at: datetime) -> Row:
    """A ``tracks`` row."""
    return {
        "id": track.id,
        "user_id": track.user_id,
        "title": track.title,
        "permalink": track.permalink,
        "permalink_url": track.permalink_url,
        "description": track.description,
        "genre": track.genre,
        "tag_list": track.tag_list,
        "created_at": track.created_at,
        "last_modified": track.last_modified,
        "duration_ms": track.duration,
        "playback_count": track.playback_count,
        "likes_count": track.likes_count,
        "reposts_count": track.reposts_count,
        "comment_count": track.comment_count,
        "download_count": track.download_count,
        "public": track.public,
        "sharing": track.sharing,
        "fetched_at": fetched_at,
    }


def track_stats_row(track: Track, observed_at: datetime) -> Row:
    """A ``track_stats`` snapshot of a track's counters at platform time ``observed_at``."""
    return {
        "track_id": track.id,
        "observed_at": observed_at,
        "playback_count": track.playback_count,
        "likes_count": track.likes_count,
        "reposts_count": track.reposts_count,
        "comment_count": track.comment_count,
        "download_count": track.download_count,
    }


def follow_row(
    follower_id: int,
    followee_id: int,
    event_time: datetime,
    time_source: TimeSource,
    fetched_at: datetime,
) -> Row:
    """A ``follows`` event row."""
    return {
        "follower_id": follower_id,
        "followee_id": followee_id,
        "event_time": event_time,
        "time_source": time_source,
        "fetched_at": fetched_at,
    }


def track_event_row(
    track_id: int,
    user_id: int,
    event_time: datetime,
    time_source: TimeSource,
    fetched_at: datetime,
) -> Row:
    """A ``reposts`` or ``likes`` event row (both tables share these columns)."""
    return {
        "track_id": track_id,
        "user_id": user_id,
        "event_time": event_time,
        "time_source": time_source,
        "fetched_at": fetched_at,
    }


def web_profile_row(user_id: int, profile: WebProfile, fetched_at: datetime) -> Row:
    """A ``web_profiles`` row."""
    return {
        "user_id": user_id,
        "url": profile.url,
        "network": profile.network,
        "title": profile.title,
        "username": profile.username,
        "fetched_at": fetched_at,
    }
