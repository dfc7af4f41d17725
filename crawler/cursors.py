"""Pure helpers for api-v2 URLs: cursor times, ``client_id`` handling, the host guard.

Cursors are opaque to the platform's clients, but the real service encodes a time in
them: ``offset=<epoch microseconds>`` on follower/following/reposter/liker lists and
``offset=<ISO time>,tracks,<20-digit id>`` on track lists. A parseable time is recorded
as the event time of the items it bounds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from crawler.errors import OffHostError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch microseconds of 2001-09-09 .. 2286: small integers are list offsets, not times.
_MIN_MICROS = 10**15
_MAX_MICROS = 10**16 - 1
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}:?\d{2})?")
_CURSOR_PARAMS = ("offset", "cursor")


def parse_cursor_time(cursor: str) -> datetime | None:
    """The time encoded in one cursor value, or None when it carries none."""
    value = cursor.strip()
    if value.isdigit():
        micros = int(value)
        if _MIN_MICROS <= micros <= _MAX_MICROS:
            return _EPOCH + timedelta(microseconds=micros)
        return None
    match = _ISO.match(value)
    if match is None:
        return None
    stamp, zone = match.group(1).replace(" ", "T"), match.group(2)
    if zone in (None, "Z"):
        zone = "+00:00"
    try:
        parsed = datetime.fromisoformat(stamp + zone)
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def cursor_time(next_href: str | None) -> datetime | None:
    """The time in a ``next_href``'s cursor parameter (``offset`` or ``cursor``), if any."""
    if not next_href:
        return None
    for key, value in parse_qsl(urlsplit(next_href).query, keep_blank_values=True):
        if key in _CURSOR_PARAMS:
            found = parse_cursor_time(value)
            if found is not None:
                return found
    return None


def with_params(url: str, **params: str | int) -> str:
    """``url`` with each of ``params`` set (replacing any value it already had)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    kept.extend((k, str(v)) for k, v in params.items())
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
