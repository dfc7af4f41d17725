"""The URL a request is sent to: the client_id and the web client's version, added once."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from yarl import URL

from crawler.http import ApiClient
from crawler.transport import BrowserProfile, Response
from tests.fake_client_ids import StaticClientIds

API = "https://api-v2.soundcloud.com"


class Recording:
    """A transport that answers every GET with ``{}`` and keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[URL | str] = []

    async def get(self, url: URL | str, *, max_bytes: int) -> Response:
        self.sent.append(url)
        return Response(200, {"Content-Type": "application/json"}, b"{}")

    def cookie_header(self, url: str) -> str:
        return ""

    def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        return None

    async def close(self) -> None:
        return None


def _query(url: URL | str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(str(url)).query, keep_blank_values=True)


async def test_each_request_carries_the_current_client_id_and_version_once() -> None:
    transport, ids = Recording(), StaticClientIds("FIRST123")
    profile = BrowserProfile(app_version="1764842160")
    client = ApiClient(transport, API, ids, concurrency=2, profile=profile)

    await client.fetch(f"{API}/users/7")
    cursor = "offset=2024-01-01T00%3A00%3A00.000Z%2C12&limit=200"
    await client.fetch(f"{API}/users/7/followers?{cursor}")
    ids.known = "SECOND45"  # a rotated id: every later request carries the new one
    await client.fetch(f"{API}/users/8?client_id=STALE999")
    profile.app_version = "1764900000"
    await client.fetch(f"{API}/users/9")

    plain, page, stale, later = transport.sent
    assert isinstance(plain, URL) and isinstance(page, URL)  # assembled, not re-parsed
    assert str(plain) == f"{API}/users/7?client_id=FIRST123&app_version=1764842160&app_locale=en"
    assert _query(page) == [
        ("offset", "2024-01-01T00:00:00.000Z,12"),
        ("limit", "200"),
        ("client_id", "FIRST123"),
        ("app_version", "1764842160"),
        ("app_locale", "en"),
    ]
    assert str(page).startswith(f"{API}/users/7/followers?{cursor}&")  # still encoded
    assert dict(_query(stale)) == {
        "client_id": "SECOND45",
        "app_version": "1764842160",
        "app_locale": "en",
    }
    assert dict(_query(later))["app_version"] == "1764900000"
    assert dict(_query(later))["client_id"] == "SECOND45"


async def test_a_url_not_yet_percent_encoded_goes_as_a_string_for_a_full_parse() -> None:
    transport = Recording()
    client = ApiClient(
        transport, API, StaticClientIds("ID123456"), concurrency=2, profile=BrowserProfile()
    )
    await client.fetch(f"{API}/search/users?q=daft punk")
    (sent,) = transport.sent
    assert sent == f"{API}/search/users?q=daft punk&client_id=ID123456"


async def test_a_version_the_page_names_unencoded_is_not_pasted_into_an_assembled_url() -> None:
    transport = Recording()
    profile = BrowserProfile(app_version="1 2")
    client = ApiClient(transport, API, StaticClientIds("ID123456"), concurrency=2, profile=profile)
    await client.fetch(f"{API}/users/3")
    (sent,) = transport.sent
    assert isinstance(sent, str)
    assert dict(_query(sent))["app_version"] == "1 2"
