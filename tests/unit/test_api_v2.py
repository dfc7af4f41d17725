"""Every real api-v2 body parses; wrong types name the field; unknown fields pass."""

from __future__ import annotations

import copy

import pytest
from pydantic import BaseModel

from schemas import api_v2
from schemas.errors import PayloadError
from tests import fixtures

# Which model each real body is, by the request it answered.
MODEL_FOR: dict[str, type[BaseModel] | str] = {
    "TeamNewPipe__charts_404_body.json": "not_found",
    "TeamNewPipe__followings_217903802_limit200.json": api_v2.UserPage,
    "TeamNewPipe__followings_8553751_limit200.json": api_v2.UserPage,
    "TeamNewPipe__homepage_sc_hydration.json": "hydration",
    "TeamNewPipe__resolve_track_135535700.json": api_v2.Track,
    "TeamNewPipe__search_users_page1_query_urn.json": api_v2.UserPage,
    "TeamNewPipe__track_comments_1670147625.json": api_v2.CommentPage,
    "TeamNewPipe__user_10494998.json": api_v2.User,
    "TeamNewPipe__user_542134.json": api_v2.User,
    "TeamNewPipe__user_albums_4803918_page2_numeric_offset.json": api_v2.PlaylistPage,
    "TeamNewPipe__user_likes_30854092_page1.json": api_v2.LikePage,
    "TeamNewPipe__user_tracks_10494998_page1.json": api_v2.TrackPage,
    "TeamNewPipe__user_tracks_73637815_empty_page_with_next_href.json": api_v2.TrackPage,
    "TeamNewPipe__user_tracks_73637815_page1.json": api_v2.TrackPage,
    "cloudr-app__opensoundcloud_docs_track_get.json": api_v2.Track,
    "cloudr-app__opensoundcloud_docs_user_get.json": api_v2.User,
    "cloudr-app__opensoundcloud_docs_user_likes.json": api_v2.LikePage,
    "cloudr-app__opensoundcloud_docs_user_tracks.json": api_v2.TrackPage,
}


def test_every_fixture_has_a_model() -> None:
    assert set(fixtures.all_names()) == set(MODEL_FOR)


@pytest.mark.parametrize("name", sorted(MODEL_FOR))
def test_fixture_parses(name: str) -> None:
    body = fixtures.load(name)
    model = MODEL_FOR[name]
    if model == "not_found":
        assert api_v2.is_not_found_body(body)
    elif model == "hydration":
        entries = api_v2.parse_hydration(body)
        assert api_v2.client_id_from_hydration(entries) == "CkCiIyf14rHi27fhk7HxhPOzc85okfSJ"
    else:
        assert isinstance(model, type)
        parsed = api_v2.parse(model, body)
        if isinstance(body, dict) and "collection" in body:
            assert isinstance(parsed, api_v2.Page)
            assert len(parsed.collection) == len(body["collection"])
            assert parsed.next_href == body["next_href"]
        else:
            assert parsed.id == body["id"]  # type: ignore[attr-defined]


def test_full_user_values() -> None:
    user = api_v2.parse(api_v2.User, fixtures.load("TeamNewPipe__user_542134.json"))
    assert user.id == 542134
    assert user.permalink == "dubmatix"
    assert user.followers_count == 2775276
    assert user.reposts_count is None
    assert user.plan == "free"
    assert user.created_at.isoformat() == "2010-01-20T11:56:32+00:00"


def test_empty_page_keeps_its_next_href() -> None:
    page = api_v2.parse(
        api_v2.TrackPage,
        fixtures.load("TeamNewPipe__user_tracks_73637815_empty_page_with_next_href.json"),
    )
    assert page.collection == []
    assert page.next_href is not None and "offset=" in page.next_href


def test_search_page_total_results() -> None:
    page = api_v2.parse(
        api_v2.UserPage, fixtures.load("TeamNewPipe__search_users_page1_query_urn.json")
    )
    assert page.total_results is not None and page.query_urn is not None


def test_wrong_type_names_the_field() -> None:
    body = copy.deepcopy(fixtures.load("TeamNewPipe__followings_8553751_limit200.json"))
    body["collection"][3]["followers_count"] = "many"
    with pytest.raises(PayloadError, match=r"field collection\.3\.followers_count"):
        api_v2.parse(api_v2.UserPage, body)


def test_missing_required_field_is_named() -> None:
    body = copy.deepcopy(fixtures.load("TeamNewPipe__user_542134.json"))
    del body["id"]
    with pytest.raises(PayloadError, match=r"User: field id: Field required"):
        api_v2.parse(api_v2.User, body)


def test_unknown_fields_never_fail() -> None:
    body = copy.deepcopy(fixtures.load("TeamNewPipe__resolve_track_135535700.json"))
    body["brand_new_field"] = {"nested": [1, 2, 3]}
    body["user"]["another_new_one"] = True
    assert api_v2.parse(api_v2.Track, body).id == 135535700


def test_hydration_without_api_client() -> None:
    entries = api_v2.parse_hydration([{"hydratable": "features", "data": {}}])
    assert api_v2.client_id_from_hydration(entries) is None


def test_hydration_with_bad_shape() -> None:
    with pytest.raises(PayloadError, match="__sc_hydration"):
        api_v2.parse_hydration({"not": "a list"})


def _page(items: list[object], next_href: object = None) -> bytes:
    import json

    return json.dumps({"collection": items, "next_href": next_href}).encode()


def test_a_list_page_lands_without_its_odd_items() -> None:
    parser = api_v2.ListPageParser(api_v2.MiniUser)
    good = {"id": 1, "kind": "user", "username": "a"}
    page = parser.parse_body(
        _page([good, {"kind": "user"}, {"id": 3, "kind": "playlist"}, "deleted", good], "h")
    )
    assert [u.id for u in page.collection] == [1, 1]
    assert page.next_href == "h"
    assert [s["index"] for s in page.skipped] == [1, 2, 3]
    assert all(s["reason"] for s in page.skipped)
    assert page.skipped[2]["raw"] == "deleted"


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"next_href": null}', b'{"collection": {}}', b'{"collection": [], "next_href": 5}',
     b"{not json"],
)  # fmt: skip
def test_a_body_that_is_not_a_page_fails_naming_why(body: bytes) -> None:
    with pytest.raises(PayloadError):
        api_v2.ListPageParser(api_v2.MiniUser).parse_body(body)


def test_a_page_over_the_item_cap_is_refused() -> None:
    parser = api_v2.ListPageParser(api_v2.MiniUser, max_items=5)
    assert len(parser.parse_body(_page([{"id": i} for i in range(5)])).collection) == 5
    with pytest.raises(PayloadError, match="6 items in one page, over the cap of 5"):
        parser.parse_body(_page([{"id": i} for i in range(6)]))
    with pytest.raises(PayloadError, match="over the cap"):  # on the item-by-item path too
        parser.parse_body(_page([{"id": i} for i in range(5)] + ["odd"]))
    assert api_v2.MAX_PAGE_ITEMS >= 5 * 200


def test_a_batch_answer_keeps_its_good_items_and_refuses_what_is_not_an_array() -> None:
    import json

    parser = api_v2.BatchParser(api_v2.MiniUser, max_items=4)
    good = {"id": 1, "kind": "user", "username": "a"}
    assert [u.id for u in parser.parse_body(json.dumps([good, good]).encode()).collection] == [1, 1]
    odd = parser.parse_body(json.dumps([good, {"kind": "user"}, "deleted"]).encode())
    assert [u.id for u in odd.collection] == [1]
    assert [s["index"] for s in odd.skipped] == [1, 2]
    for body in (b'{"collection": []}', b"{not json", b"7"):
        with pytest.raises(PayloadError):
            parser.parse_body(body)
    with pytest.raises(PayloadError, match="over the cap"):
        parser.parse_body(json.dumps([good] * 5).encode())
