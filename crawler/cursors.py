"""Pure helpers for api-v2 URLs: cursor times, ``client_id`` handling, the host guard.

Cursors are opaque to the platform's clients, but the real service encodes a time in
many of them, in several forms over the years (``shared/fixtures/recorded-exchanges``):
``offset=<ISO time>,<kind>,<padded ids>`` on track and like lists (2025-26), epoch
microseconds (16 digits, likers 2016), epoch milliseconds (13 digits, followers 2017),
and plain integer offsets (``offset=20``) that carry no time at all. A parseable time is
recorded as the event time of the items it bounds; a cursor of no known form is read as
"no time", never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from crawler.errors import OffHostError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}:?\d{2})?")
# Something shaped like a date: a cursor starting so meant to carry a time.
_DATE_LIKE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}")
_CURSOR_PARAMS = ("offset", "cursor")

CursorFormat = Literal["epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "iso", "offset", "unknown"]
"""How a cursor value is written; ``offset`` (a small integer) carries no time by design."""

# Digits of an epoch time between 2001-09-09 and 2286-11-20 in each unit: an all-digit
# cursor of exactly that many digits is a time; a short one (up to 9 digits) is a list
# offset; any other length is of no known form.
_EPOCH_DIGITS: dict[int, tuple[CursorFormat, int]] = {
    10: ("epoch_s", 1_000_000),
    13: ("epoch_ms", 1_000),
    16: ("epoch_us", 1),
    19: ("epoch_ns", 0),
}
_MAX_OFFSET_DIGITS = 9


@dataclass(frozen=True, slots=True)
class CursorReading:
    """One cursor value read: its form and the time it encodes (None: none or unreadable).

    ``missing`` is True when the form promises a time that could not be read (an ISO
    cursor with a month 13, say): the sign of a format change, counted, never guessed.
    """

    value: str
    format: CursorFormat
    time: datetime | None

    @property
    def missing(self) -> bool:
        """The cursor's form encodes a time, but none could be read from it."""
        return self.time is None and self.format not in ("offset", "unknown")


def read_cursor(cursor: str) -> CursorReading:
    """Classify one cursor value and read the time it encodes, if any."""
    value = cursor.strip()
    if value.isdigit() and value.isascii():
        if len(value) <= _MAX_OFFSET_DIGITS:
            return CursorReading(value, "offset", None)
        form = _EPOCH_DIGITS.get(len(value))
        if form is None:
            return CursorReading(value, "unknown", None)
        name, micros_per = form
        number = int(value)
        micros = number // 1000 if micros_per == 0 else number * micros_per
        return CursorReading(value, name, _EPOCH + timedelta(microseconds=micros))
    match = _ISO.match(value)
    if match is None:
        form_name: CursorFormat = "iso" if _DATE_LIKE.match(value) else "unknown"
        return CursorReading(value, form_name, None)
    stamp, zone = match.group(1).replace(" ", "T"), match.group(2)
    if zone in (None, "Z"):
        zone = "+00:00"
    try:
        parsed = datetime.fromisoformat(stamp + zone)
    except ValueError:
        return CursorReading(value, "iso", None)
    return CursorReading(value, "iso", parsed.astimezone(UTC))


def parse_cursor_time(cursor: str) -> datetime | None:
    """The time encoded in one cursor value, or None when it carries none."""
    return read_cursor(cursor).time


def href_cursor(next_href: str | None) -> CursorReading | None:
    """The cursor parameter (``offset`` or ``cursor``) of a ``next_href``, read; None if absent.

    With both present, the one that carries a time wins (``cursor`` pages by id on some
    lists while ``offset`` holds the time).
    """
    if not next_href:
        return None
    found: CursorReading | None = None
    for key, value in parse_qsl(urlsplit(next_href).query, keep_blank_values=True):
        if key in _CURSOR_PARAMS:
            reading = read_cursor(value)
            if reading.time is not None:
                return reading
            found = found or reading
    return found


def cursor_time(next_href: str | None) -> datetime | None:
    """The time in a ``next_href``'s cursor parameter (``offset`` or ``cursor``), if any."""
    reading = href_cursor(next_href)
    return reading.time if reading is not None else None


def with_params(url: str, **params: str | int) -> str:
    """``url`` with each of ``params`` set (replacing any value it already had)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    kept.extend((k, str(v)) for k, v in params.items())
    return urlunsplit(parts._replace(query=urlencode(kept)))


def without_params(url: str, names: tuple[str, ...]) -> str:
    """``url`` without the query parameters ``names`` (the rest kept in order)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def with_client_id(url: str, client_id: str) -> str:
    """``url`` carrying ``client_id`` (added when missing, replaced when stale)."""
    if "client_id=" not in url:
        # The common case, taken on every request: append without re-encoding the URL.
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}client_id={_quoted(client_id)}"
    if client_id_of(url) == client_id:
        return url
    return with_params(url, client_id=client_id)


@lru_cache(maxsize=16)
def _quoted(value: str) -> str:
    # One client_id serves thousands of requests a second: quote it once.
    return quote(value, safe="")


def client_id_of(url: str) -> str | None:
    """The ``client_id`` query parameter of ``url``, if it has one."""
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "client_id":
            return value
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def check_on_api_host(url: str, api_base: str) -> str:
    """Return ``url`` if it is on the API's scheme, host, port and path; else raise.

    The guard against server-side request forgery: a ``next_href`` is data from the
    remote side and must never steer the crawler to another host.
    """
    prefix = _api_prefix(api_base)
    if url.startswith(prefix) and ".." not in url and "\\" not in url:
        # The prefix ends with the '/' after the authority and path, so the host, port
        # and path root are exactly the API's: the parse below would agree.
        return url
    try:
        origin = _origin(url)
    except ValueError as exc:
        raise OffHostError(f"refused URL {url[:200]!r}: {exc}") from exc
    if origin != _origin(api_base):
        raise OffHostError(f"refused URL off the API host: {url[:200]!r}")
    base_path = urlsplit(api_base).path.rstrip("/")
    path = urlsplit(url).path
    if base_path and not (path == base_path or path.startswith(base_path + "/")):
        raise OffHostError(f"refused URL outside the API path {base_path!r}: {url[:200]!r}")
    if ".." in path.split("/"):
        raise OffHostError(f"refused URL with a dot-dot path: {url[:200]!r}")
    return url


@lru_cache(maxsize=8)
def _api_prefix(api_base: str) -> str:
    parts = urlsplit(api_base)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


def api_url(api_base: str, path: str, **params: str | int) -> str:
    """An absolute API URL for ``path`` (``/users/1``) with query ``params``."""
    url = api_base.rstrip("/") + "/" + path.lstrip("/")
    return with_params(url, **params) if params else url
