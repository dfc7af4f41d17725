"""The replay suite over the real recordings, and over recordings of shapes not seen yet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.replay import main, replay
from tests import fixtures

API = "https://api-v2.soundcloud.com"


async def test_every_real_recording_parses_and_lands() -> None:
    report = (await replay(fixtures.exchanges_dir())).as_json()
    assert report["failed"] == []
    assert report["cursor_time_missing"] == []
    assert report["ok"]
    assert report["api_bodies"] >= 50 and report["parsed"] >= 45
    # ISO composites (track and like lists) and plain integer offsets (search, albums).
    assert report["cursors"]["iso"] > 0 and report["cursors"]["offset"] > 0
    # The handlers landed real pages: follow lists, user tracks, users.
    assert report["handlers"]["follow_list"]["rows"] > 0
    assert report["handlers"]["user_tracks"]["rows"] > 0
    assert report["handlers"]["user_range"]["units"] == 2
    assert report["discovery"]["discovered"] == "CkCiIyf14rHi27fhk7HxhPOzc85okfSJ"
    assert report["discovery"]["discovered_app_version"]


def _user(uid: int) -> dict[str, Any]:
    return {"id": uid, "kind": "user", "created_at": "2019-05-01T10:00:00Z", "username": f"u{uid}"}


def _exchange(url: str, status: int, body: Any, headers: Any = None) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "request": {"httpMethod": "GET", "url": url, "headers": {}},
        "response": {
            "responseCode": status,
            "responseMessage": "",
            "responseHeaders": headers
            if headers is not None
            else {"content-type": ["application/json; charset=utf-8"]},
            "responseBody": text,
            "latestUrl": url,
        },
    }


def _write(directory: Path, name: str, exchange: dict[str, Any]) -> None:
    (directory / f"{name}.json").write_text(json.dumps(exchange))


async def test_recordings_of_unseen_shapes_are_classified_never_crashed(tmp_path: Path) -> None:
    cid = "client_id=Abcdefgh12345678"
    # Epoch milliseconds on followers (2017), microseconds on likers (2016).
    _write(tmp_path, "followers_ms", _exchange(
        f"{API}/users/5/followers?{cid}&limit=2&linked_partitioning=1", 200,
        {"collection": [_user(7), _user(8)],
         "next_href": f"{API}/users/5/followers?offset=1488000000000&limit=2"}))  # fmt: skip
    _write(tmp_path, "likers_us", _exchange(
        f"{API}/tracks/9/likers?{cid}&limit=1&linked_partitioning=1", 200,
        {"collection": [_user(7)],
         "next_href": f"{API}/tracks/9/likers?offset=1460000000000000&limit=1"}))  # fmt: skip
    # A deleted user (no created_at) and an item of an unknown kind in a follow list.
    _write(tmp_path, "followings_odd", _exchange(
        f"{API}/users/6/followings?{cid}&limit=200", 200,
        {"collection": [_user(10), {"id": 11, "kind": "user", "username": "deleted"},
                        {"id": 12, "kind": "station"}],
         "next_href": None}))  # fmt: skip
    # A cursor of no known form, and one shaped like a date that is not one.
    _write(
        tmp_path,
        "tracks_odd_cursor",
        _exchange(
            f"{API}/users/5/tracks?{cid}&limit=20",
            200,
            {"collection": [], "next_href": f"{API}/users/5/tracks?offset=zz9-abc&limit=20"},
        ),
    )
    bad_date = "2025-13-40T99%3A00%3A00.000Z%2Ctracks%2C1"
    _write(
        tmp_path,
        "tracks_bad_date",
        _exchange(
            f"{API}/users/6/tracks?{cid}&limit=20",
            200,
            {"collection": [], "next_href": f"{API}/users/6/tracks?offset={bad_date}&limit=20"},
        ),
    )
    # A body no model fits.
    _write(tmp_path, "user_wrong", _exchange(f"{API}/users/77?{cid}", 200, {"id": "seventy"}))
    # DataDome's block, with headers as a stringified map; and an api-v2 401.
    _write(
        tmp_path,
        "blocked",
        _exchange(
            f"{API}/users/5/tracks?{cid}",
            403,
            '{"url":"https://geo.captcha-delivery.com/captcha/?initialCid=AHrlqAAA"}',
            headers=str({"x-datadome": ["protected"], "content-type": ["application/json"]}),
        ),
    )
    _write(
        tmp_path,
        "unauthorized",
        _exchange(
            f"{API}/users/5?client_id=old",
            401,
            {"code": 401, "message": "invalid client", "errors": [{"error_message": "x"}]},
        ),
    )
    (tmp_path / "garbage.json").write_text("{not json")

    report = (await replay(tmp_path)).as_json()
    formats = report["cursors"]
    assert formats["epoch_ms"] == 1 and formats["epoch_us"] == 1
    missing = {m["file"]: m["format"] for m in report["cursor_time_missing"]}
    assert missing == {"tracks_odd_cursor.json": "unknown", "tracks_bad_date.json": "iso"}
    skipped = sorted((s["index"], s["reason"]) for s in report["items_skipped"])
    assert [i for i, _ in skipped] == [1, 2]
    assert "created_at" in skipped[0][1] and "station" in skipped[1][1]
    # The odd page still landed its good item (and the raw items as skipped rows).
    assert report["handlers"]["follow_list"]["rows"] >= 2 * 3 + 1
    failed = {f["file"]: f["reason"] for f in report["failed"]}
    assert set(failed) == {"user_wrong.json", "garbage.json"}
    assert "field id" in failed["user_wrong.json"]
    kinds = {r["file"]: r["kind"] for r in report["rejections"]}
    assert kinds == {"blocked.json": "blocked", "unauthorized.json": "invalid_client_id"}
    assert not report["ok"]


def test_the_command_prints_json_and_fails_on_failures(tmp_path: Path, capsys: Any) -> None:
    assert main(["--exchanges", str(fixtures.exchanges_dir()), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == []
    (tmp_path / "garbage.json").write_text("[]")
    assert main(["--exchanges", str(tmp_path), "--json"]) == 1
    assert main(["--exchanges", str(tmp_path / "missing")]) == 2
