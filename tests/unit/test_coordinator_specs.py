"""Job specs, expansion into unit payloads, error paths and the OpenAPI document (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from coordinator import expand
from coordinator.auth import hash_key, new_key
from coordinator.http import field_errors, openapi
from coordinator.routes import ROUTE_TABLE
from schemas.jobs import (
    MAX_UNITS_PER_JOB,
    JobSubmit,
    NetworkSpec,
    PlayPollSpec,
    ScoreSpec,
    TrackTimelinesSpec,
    UserSweepSpec,
    UserTracksSpec,
)
from schemas.work import PAYLOAD_MODELS, TimelineSpec

SUBMIT: TypeAdapter[Any] = TypeAdapter(JobSubmit)


def _payloads_valid(units: expand.UnitRows) -> list[dict[str, Any]]:
    """Every payload the coordinator emits parses with the worker's payload model."""
    model = PAYLOAD_MODELS[units.kind]
    parsed = [json.loads(p) for p in units.payloads]
    for p in parsed:
        model.model_validate(p)
    assert len(set(units.keys)) == len(units.keys)  # dedup keys unique within an expansion
    return parsed


def test_user_sweep_spec_bounds() -> None:
    assert UserSweepSpec(id_from=1, id_to=2).chunk == 1000
    with pytest.raises(ValidationError, match="greater than id_from"):
        UserSweepSpec(id_from=5, id_to=5)
    with pytest.raises(ValidationError, match="units"):
        UserSweepSpec(id_from=1, id_to=MAX_UNITS_PER_JOB * 10 + 2, chunk=10)
    with pytest.raises(ValidationError):
        UserSweepSpec(id_from=0, id_to=5)


def test_play_poll_and_timeline_specs() -> None:
    with pytest.raises(ValidationError, match="schedule makes"):
        PlayPollSpec(track_ids=list(range(1, 1001)), every_s=1, for_s=86400)
    with pytest.raises(ValidationError, match="repeat"):
        TrackTimelinesSpec(track_ids=[1], lists=("likers", "likers"))


def test_network_expansion_directions_and_expand_flag() -> None:
    spec = NetworkSpec(seeds=[1, 2], depth=0, direction="both")
    parsed = _payloads_valid(expand.network_seeds(spec, [1, 2]))
    assert [(p["user_id"], p["direction"]) for p in parsed] == [
        (1, "followers"),
        (1, "followings"),
        (2, "followers"),
        (2, "followings"),
    ]
    assert not any(p["expand"] for p in parsed)  # depth 0: the seeds' lists only
    deeper = _payloads_valid(expand.follow_lists([9], "followings", 1, 3))
    assert deeper == [{"user_id": 9, "direction": "followings", "depth": 1, "expand": True}]
    capped = expand.network_seeds(NetworkSpec(seeds=[1, 2, 3], max_users=2), [1, 2, 3])
    assert len(capped.payloads) == 4  # 2 users x 2 directions


def test_track_user_poll_and_score_expansions() -> None:
    parsed = _payloads_valid(
        expand.track_timelines(
            TrackTimelinesSpec(track_ids=[3, 3, 4], lists=("reposters", "likers"))
        )
    )
    assert len(parsed) == 4
    chained = _payloads_valid(
        expand.user_tracks_job(
            UserTracksSpec(user_ids=[7, 7, 8], then_timelines=TimelineSpec(lists=("likers",)))
        )
    )
    assert chained[0]["then_timelines"] == {"lists": ["likers"], "timestamps": "exact"}
    assert len(chained) == 2
    polls = expand.play_polls(PlayPollSpec(track_ids=[5], every_s=60, for_s=150))
    assert _payloads_valid(polls) == [{"track_ids": [5]}] * 3
    assert polls.delays_s == [0.0, 60.0, 120.0]
    # 120 tracks (one twice): batches of 50, 50 and 20, each at every tick
    many = expand.play_polls(PlayPollSpec(track_ids=[*range(1, 121), 7], every_s=60, for_s=60))
    batches = _payloads_valid(many)
    assert [len(b["track_ids"]) for b in batches] == [50, 50, 50, 50, 20, 20]
    assert sorted({i for b in batches for i in b["track_ids"]}) == list(range(1, 121))
    assert len(set(many.keys)) == len(many.keys)
    score = _payloads_valid(expand.score(ScoreSpec(model="revisit", params={"window": "daily"})))
    assert score == [{"model": "revisit", "params": {"window": "daily"}}]


@given(
    n=st.integers(min_value=1, max_value=40),
    direction=st.sampled_from(["followers", "followings", "both"]),
    depth=st.integers(min_value=0, max_value=3),
    max_depth=st.integers(min_value=0, max_value=3),
)
def test_follow_list_expansion_properties(
    n: int, direction: str, depth: int, max_depth: int
) -> None:
    units = expand.follow_lists(list(range(1, n + 1)), direction, depth, max_depth)
    parsed = _payloads_valid(units)
    assert len(parsed) == n * len(expand.directions(direction))
    assert all(p["expand"] == (depth < max_depth) for p in parsed)
    assert all(
        k == f"fl:{p['direction']}:{p['user_id']}" for k, p in zip(units.keys, parsed, strict=True)
    )


def test_submit_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        SUBMIT.validate_python({"kind": "network", "spec": {"seeds": [1], "depth": 9}})
    [err] = field_errors(info.value, strip_tag=True)
    assert err.field == "spec.depth"
    with pytest.raises(ValidationError) as info:
        SUBMIT.validate_python({"kind": "nope", "spec": {}})
    [err] = field_errors(info.value, strip_tag=True)
    assert (err.field, err.type) == ("kind", "union_tag_invalid")
    with pytest.raises(ValidationError) as info:
        SUBMIT.validate_python({"kind": "network", "spec": {"seeds": [0.5]}})
    assert {e.field for e in field_errors(info.value, strip_tag=True)} == {"spec.seeds.0"}


def test_openapi_document_is_complete_without_a_server() -> None:
    doc = openapi(list(ROUTE_TABLE), "t", "1")
    ops = [op for methods in doc["paths"].values() for op in methods.values()]
    assert len(ops) == len(ROUTE_TABLE)
    ids = [op["operationId"] for op in ops]
    assert len(set(ids)) == len(ids)
    assert all(op.get("summary") for op in ops)
    lease = doc["paths"]["/v1/leases"]["post"]
    assert lease["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LeaseRequest"
    }
    unit_param = doc["paths"]["/v1/leases/{unit}/complete"]["post"]["parameters"][0]
    assert unit_param == {
        "name": "unit",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }


def test_keys_are_random_and_only_their_hash_is_kept() -> None:
    key, digest, prefix = new_key()
    other, other_digest, _ = new_key()
    assert key != other and digest != other_digest
    assert key.startswith("sf_") and len(key) > 40
    assert digest == hash_key(key) and len(digest) == 64 and key not in digest
    assert key.startswith(prefix) and len(prefix) < len(key) // 3
