"""Pure pieces of the crawler: cursor times, URL guards, client_id extraction, backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.cursors import (
    check_on_api_host,
    client_id_of,
    cursor_time,
    parse_cursor_time,
    with_client_id,
)
from crawler.discovery import client_id_from_bundle, client_id_from_hydration, script_urls
from crawler.errors import OffHostError
from crawler.http import parse_retry_after
from crawler.ratelimit import TokenBucket
from tests import fixtures

API = "http://127.0.0.1:8000/api"


def test_cursor_times_in_both_real_forms() -> None:
    assert parse_cursor_time("1544630999191258") == datetime(
        2018, 12, 12, 16, 9, 59, 191258, tzinfo=UTC
    )
    iso = "2020-01-28T16:00:00.000Z,tracks,00748808698"
    assert parse_cursor_time(iso) == datetime(2020, 1, 28, 16, tzinfo=UTC)
    href = (
        "https://api-v2.soundcloud.com/users/73637815/tracks?offset=2026-01-20T18%3A40%3A21.000Z"
        "%2Ctracks%2C00000000002250998000&limit=20"
    )
    assert cursor_time(href) == datetime(2026, 1, 20, 18, 40, 21, tzinfo=UTC)


@pytest.mark.parametrize("value", ["20", "0", "", "abc", "2020-13-45T00:00:00Z,tracks,1"])
def test_offsets_that_are_not_times(value: str) -> None:
    assert parse_cursor_time(value) is None


@given(st.integers(min_value=10**15, max_value=10**16 - 1))
def test_epoch_microseconds_round_trip(micros: int) -> None:
    decoded = parse_cursor_time(str(micros))
    assert decoded is not None
    delta = decoded - datetime(1970, 1, 1, tzinfo=UTC)
    assert delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds == micros


def test_client_id_is_added_when_dropped_and_replaced_when_stale() -> None:
    dropped = f"{API}/tracks/5/reposters?offset=1700000000000000&limit=1"
    assert client_id_of(with_client_id(dropped, "NEW12345")) == "NEW12345"
    stale = f"{API}/users/1/followers?client_id=OLD12345&offset=1700000000000000"
    fixed = with_client_id(stale, "NEW12345")
    assert client_id_of(fixed) == "NEW12345" and "OLD12345" not in fixed
    assert "offset=1700000000000000" in fixed
    assert with_client_id(f"{API}/users/1", "ABCDEFGH") == f"{API}/users/1?client_id=ABCDEFGH"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:8000/api/users/1",  # another scheme
        "http://127.0.0.1:8001/api/users/1",  # another port
        "http://127.0.0.1:8000/admin/users/1",  # outside the API path
        "http://127.0.0.1:8000/api.evil/users/1",
        "http://127.0.0.1:8000@evil.test/api/users/1",  # userinfo trick
        "http://127.0.0.1:8000/api/../admin",
        "file:///etc/passwd",
    ],
)
def test_ssrf_guard_refuses_off_host_urls(url: str) -> None:
    with pytest.raises(OffHostError):
        check_on_api_host(url, API)


def test_ssrf_guard_accepts_the_api() -> None:
    url = f"{API}/users/1/followers?offset=1700000000000000&limit=200"
    assert check_on_api_host(url, API) == url
    assert check_on_api_host("HTTP://127.0.0.1:8000/api/users/1", API)


def test_hydration_of_the_real_homepage() -> None:
    entries = fixtures.load("TeamNewPipe__homepage_sc_hydration.json")
    html = f"<script>window.__sc_hydration = {json.dumps(entries)};</script>"
    want = next(e["data"]["id"] for e in entries if e["hydratable"] == "apiClient")
    assert client_id_from_hydration(html) == want
    assert client_id_from_hydration("<html>no hydration</html>") is None


def test_bundle_regex_never_takes_a_prefixed_key() -> None:
    bundle = 'a={google_client_id:"g00gleClientId1",stripe_client_id:"pk_live_1234567"}'
    assert client_id_from_bundle(bundle) is None
    assert client_id_from_bundle(bundle + ';b={client_id:"RightOne12345678"}') == (
        "RightOne12345678"
    )


def test_script_urls_resolve_relative_sources() -> None:
    html = '<script src="/assets/0-a.js"></script><script crossorigin src="https://cdn.test/49.js">'
    assert script_urls(html, "http://127.0.0.1:9/") == [
        "http://127.0.0.1:9/assets/0-a.js",
        "https://cdn.test/49.js",
    ]


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None, default=2.0) == 2.0
    assert parse_retry_after("soon", default=3.0) == 3.0
    past = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_token_bucket_burst_follows_the_rate_share() -> None:
    bucket = TokenBucket(40.0)
    assert bucket.capacity == 10.0
    bucket.set_rate(2.0)
    assert bucket.rate == 2.0 and bucket.capacity == 1.0
    assert TokenBucket(0).capacity == 1.0  # unlimited: acquire never waits


def test_a_budget_cut_applies_at_once_and_a_raise_after_a_refresh_period() -> None:
    from crawler.config import WorkerSettings
    from crawler.worker import Worker

    settings = WorkerSettings(api_key="k", advice_refresh_s=1.0)
    worker = Worker(settings, "postgresql://unused")
    worker._apply_share(25.0, now=100.0)  # the first advice (from unlimited): at once
    assert worker.bucket.rate == 25.0
    worker._apply_share(10.0, now=100.5)  # a cut: at once
    assert worker.bucket.rate == 10.0
    worker._apply_share(50.0, now=101.0)  # a raise: held while the others cut theirs
    worker._apply_share(50.0, now=101.5)
    assert worker.bucket.rate == 10.0
    worker._apply_share(50.0, now=102.0)  # still advised a refresh period later
    assert worker.bucket.rate == 50.0
    worker._apply_share(60.0, now=102.5)
    worker._apply_share(40.0, now=103.0)  # a cut in between drops the pending raise
    worker._apply_share(60.0, now=103.6)
    assert worker.bucket.rate == 40.0
