"""Job -> work unit expansion (pure: specs in, unit rows out; no database).

Dedup keys name a unit's target within its job, so the unique (job_id, dedup_key)
index turns re-expansion into a no-op: ``fl:<direction>:<user>`` for follow lists,
``ut:<user>`` for user tracks, ``tl:<list>:<track>`` for track lists,
``pp:<track>:<k>`` for the k-th play poll, ``r:<id_from>`` for sweep ranges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from coordinator.queries import UnitRows
from schemas.api_v2 import MAX_BATCH_IDS
from schemas.jobs import NetworkSpec, PlayPollSpec, ScoreSpec, TrackTimelinesSpec, UserTracksSpec
from schemas.work import TimelineSpec


def _dump(payload: dict[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def directions(spec_direction: str) -> tuple[str, ...]:
    """The list directions a network job fetches per user."""
    if spec_direction == "both":
        return ("followers", "followings")
    return (spec_direction,)


def follow_key(direction: str, user_id: int) -> str:
    """Dedup key of one user's list in one direction."""
    return f"fl:{direction}:{user_id}"


def follow_lists(
    user_ids: Sequence[int], spec_direction: str, depth: int, max_depth: int
) -> UnitRows:
    """One ``follow_list`` unit per user and direction at ``depth``."""
    rows = UnitRows("follow_list", [], [], [], [])
    for user_id in user_ids:
        for direction in directions(spec_direction):
            payload = {
                "user_id": user_id,
                "direction": direction,
                "depth": depth,
                "expand": depth < max_depth,
            }
            rows.payloads.append(_dump(payload))
            rows.keys.append(follow_key(direction, user_id))
            rows.depths.append(depth)
            rows.delays_s.append(0.0)
    return rows


def network_seeds(spec: NetworkSpec, seed_ids: Sequence[int]) -> UnitRows:
    """The depth-0 units of a network job (seeds already resolved and deduplicated)."""
    return follow_lists(seed_ids[: spec.max_users], spec.direction, 0, spec.depth)


def user_tracks(user_ids: Iterable[int], then_timelines: TimelineSpec | None) -> UnitRows:
    """One ``user_tracks`` unit per user."""
    rows = UnitRows("user_tracks", [], [], [], [])
    chain = then_timelines.model_dump(mode="json") if then_timelines is not None else None
    for user_id in dict.fromkeys(user_ids):
        rows.payloads.append(_dump({"user_id": user_id, "then_timelines": chain}))
        rows.keys.append(f"ut:{user_id}")
        rows.depths.append(0)
        rows.delays_s.append(0.0)
    return rows


def track_lists(
    track_ids: Iterable[int], lists: Sequence[str], timestamps: str, depth: int = 0
) -> UnitRows:
    """One ``track_list`` unit per track and list."""
    rows = UnitRows("track_list", [], [], [], [])
    for track_id in dict.fromkeys(track_ids):
        for name in lists:
            payload = {"track_id": track_id, "list": name, "timestamps": timestamps}
            rows.payloads.append(_dump(payload))
            rows.keys.append(f"tl:{name}:{track_id}")
            rows.depths.append(depth)
            rows.delays_s.append(0.0)
    return rows


def track_timelines(spec: TrackTimelinesSpec) -> UnitRows:
    """The units of a ``track_timelines`` job."""
    return track_lists(spec.track_ids, spec.lists, spec.timestamps)


def play_polls(spec: PlayPollSpec) -> UnitRows:
    """One snapshot unit per batch of 50 tracks and tick, the k-th due ``k * every_s`` on.

    A batch is one ``/tracks?ids=`` request: 50 tracks' counters for one request of the
    budget, where a request per track spent 50.
    """
    rows = UnitRows("play_poll", [], [], [], [])
    ticks = int(spec.for_s // spec.every_s) + 1
    tracks = list(dict.fromkeys(spec.track_ids))
    for start in range(0, len(tracks), MAX_BATCH_IDS):
        batch = tracks[start : start + MAX_BATCH_IDS]
        payload = _dump({"track_ids": batch})
        for k in range(ticks):
            rows.payloads.append(payload)
            rows.keys.append(f"pp:{batch[0]}+{len(batch)}:{k}")
            rows.depths.append(0)
            rows.delays_s.append(k * spec.every_s)
    return rows


def score(spec: ScoreSpec) -> UnitRows:
    """The one unit of a ``score`` job."""
    payload = _dump({"model": spec.model, "params": spec.params})
    return UnitRows("score", [payload], ["score"], [0], [0.0])


def user_tracks_job(spec: UserTracksSpec) -> UnitRows:
    """The units of a ``user_tracks`` job."""
    return user_tracks(spec.user_ids, spec.then_timelines)
