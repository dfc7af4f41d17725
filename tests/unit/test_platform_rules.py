"""The real platform's rules as pure functions: rejections, block backoff, cursor forms.

The shapes come from ``shared/fixtures/recorded-exchanges`` (DataDome 403s, api-v2's JSON
errors, the cursor forms of 2016-2026); the unknown shapes are what a format change
would look like, and must be named, never guessed at.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.cursors import href_cursor, parse_cursor_time, read_cursor, without_params
from crawler.rejections import BlockBackoff, classify_rejection

_JSON = {"Content-Type": "application/json; charset=utf-8"}
_HTML = {"Content-Type": "text/html; charset=utf-8"}
_CAPTCHA = json.dumps({"url": "https://geo.captcha-delivery.com/captcha/?initialCid=x"})
_API_ERROR = json.dumps({"code": 403, "message": "Forbidden", "errors": [], "status": "403"})


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "reason"),
    [
        (401, _JSON, _API_ERROR, "invalid_client_id", "HTTP 401"),
        (401, {}, "", "invalid_client_id", "HTTP 401"),
        (403, {**_JSON, "x-datadome": "protected"}, "{}", "blocked", "DataDome"),
        (403, {**_JSON, "Set-Cookie": "datadome=abc; Path=/"}, "{}", "blocked", "DataDome"),
        (403, _JSON, _CAPTCHA, "blocked", "DataDome"),
        (403, _HTML, "<html><body>Please enable JS</body></html>", "blocked", "HTML"),
        (403, {}, "  <!DOCTYPE html><html></html>", "blocked", "HTML"),
        (403, _JSON, _API_ERROR, "invalid_client_id", "api-v2's error body"),
        (403, _JSON, json.dumps({"error_message": "bad id"}), "invalid_client_id", "error body"),
        (403, {"Content-Type": "text/plain"}, "nope", "blocked", "unknown shape"),
        (403, {}, "", "blocked", "unknown shape"),
    ],
)
def test_rejections_are_told_apart(
    status: int, headers: dict[str, str], body: str, kind: str, reason: str
) -> None:
    got_kind, got_reason = classify_rejection(status, headers, body.encode())
    assert got_kind == kind
    assert reason in got_reason


def test_an_unknown_403_names_its_shape() -> None:
    _, reason = classify_rejection(403, {"Content-Type": "application/x-new"}, b"\x00\xffweird")
    assert "application/x-new" in reason and "weird" in reason


@given(st.binary(max_size=300), st.sampled_from([401, 403]))
def test_any_body_is_classified_without_raising(body: bytes, status: int) -> None:
    kind, reason = classify_rejection(status, {}, body)
    assert kind in ("invalid_client_id", "blocked") and reason


def test_block_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = BlockBackoff(60.0, 1800.0)
    waits = [backoff.next_wait() for _ in range(8)]
    assert waits == [60.0, 120.0, 240.0, 480.0, 960.0, 1800.0, 1800.0, 1800.0]
    backoff.reset()
    assert backoff.next_wait() == 60.0
    for _ in range(100):  # the exponent is bounded: no overflow after a long block
        backoff.next_wait()
    assert backoff.next_wait() == 1800.0


_WHEN = datetime(2017, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "form", "time"),
    [
        ("1488603967123456", "epoch_us", _WHEN),
        ("1488603967123", "epoch_ms", _WHEN.replace(microsecond=123000)),
        ("1488603967", "epoch_s", _WHEN.replace(microsecond=0)),
        ("1488603967123456789", "epoch_ns", _WHEN),
        ("2017-03-04T05:06:07.123Z,user-track-likes,000-000-123", "iso", None),
        ("2017-03-04T07:06:07+02:00,reposts,1", "iso", _WHEN.replace(microsecond=0)),
        ("2017-03-04 05:06:07", "iso", _WHEN.replace(microsecond=0)),
        ("20", "offset", None),
        ("0", "offset", None),
        ("12345678901", "unknown", None),
        ("eyJjdXJzb3IiOiAxfQ==", "unknown", None),
        ("", "unknown", None),
    ],
)
def test_every_cursor_form_is_read(value: str, form: str, time: datetime | None) -> None:
    reading = read_cursor(value)
    assert reading.format == form
    if form == "iso" and time is None:
        assert reading.time == _WHEN.replace(microsecond=123000)
    else:
        assert reading.time == time
    assert not reading.missing


def test_a_date_shaped_cursor_that_does_not_parse_is_missing_not_guessed() -> None:
    reading = read_cursor("2025-13-40T10:30:30.218Z,user-track-likes,000-1")
    assert reading.format == "iso"
    assert reading.time is None
    assert reading.missing
    assert parse_cursor_time("2025-13-40T10:30:30Z") is None


def test_the_time_carrying_parameter_of_a_next_href_wins() -> None:
    href = "https://api-v2.soundcloud.com/users/1/likes?cursor=20&offset=1488603967123456&limit=50"
    reading = href_cursor(href)
    assert reading is not None and reading.format == "epoch_us" and reading.time == _WHEN
    plain = href_cursor("https://api-v2.soundcloud.com/users/1/tracks?offset=40&limit=20")
    assert plain is not None and plain.format == "offset" and plain.time is None
    assert href_cursor("https://api-v2.soundcloud.com/users/1/tracks?limit=20") is None
    assert href_cursor(None) is None


def test_without_params_keeps_the_rest_in_order() -> None:
    url = "https://h/x?a=1&client_id=abc&b=2&app_version=9&c="
    assert without_params(url, ("client_id", "app_version")) == "https://h/x?a=1&b=2&c="
