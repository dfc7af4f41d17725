"""Property tests: api-v2 parsing accepts any extra field and fails only with PayloadError."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import api_v2
from schemas.errors import PayloadError
from tests import fixtures

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
MODELS = [api_v2.User, api_v2.Track, api_v2.UserPage, api_v2.TrackPage, api_v2.LikePage]
USER = fixtures.load("TeamNewPipe__user_542134.json")
PAGE = fixtures.load("TeamNewPipe__followings_8553751_limit200.json")


@given(extra=st.dictionaries(st.text(min_size=1).filter(lambda k: k not in USER), json_values))
@settings(max_examples=200, deadline=None)
def test_unknown_fields_never_fail(extra: dict[str, Any]) -> None:
    body = {**USER, **extra}
    assert api_v2.parse(api_v2.User, body).id == USER["id"]


@given(data=json_values, model=st.sampled_from(MODELS))
@settings(max_examples=300, deadline=None)
def test_arbitrary_json_parses_or_raises_payload_error(data: Any, model: type[Any]) -> None:
    try:
        api_v2.parse(model, data)
    except PayloadError as exc:
        assert str(exc).startswith(model.__name__)


@given(
    index=st.integers(min_value=0, max_value=len(PAGE["collection"]) - 1),
    key=st.sampled_from(["id", "followers_count", "created_at", "verified"]),
    value=st.text(min_size=1).filter(lambda s: not s.strip().lstrip("-").isdigit())
    | st.lists(st.integers(), max_size=2),
)
@settings(max_examples=200, deadline=None)
def test_wrong_type_is_named(index: int, key: str, value: Any) -> None:
    body = copy.deepcopy(PAGE)
    body["collection"][index][key] = value
    try:
        api_v2.parse(api_v2.UserPage, body)
    except PayloadError as exc:
        assert f"collection.{index}.{key}" in str(exc)
    else:  # pydantic's lax mode accepts e.g. "true" for a bool: the value must have parsed
        assert key in ("verified", "created_at")
