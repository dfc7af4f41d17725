"""How the simulator answers: the real service's error bodies, 404s and compact JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

JSON = "application/json"


class BadRequest(Exception):
    """A malformed parameter: answered with 400 and the real service's error body."""


def error(status: int, message: str) -> web.Response:
    """The real service's JSON error body for ``status``."""
    reason = {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}[status]
    body = {
        "code": status,
        "message": message,
        "link": "https://developers.soundcloud.com/docs/api/explorer/open-api",
        "status": f"{status} - {reason}",
        "errors": [{"error_message": message}],
        "error": None,
    }
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=JSON)


def not_found() -> web.Response:
    """The real service's bare 404."""
    return web.Response(status=404, body=b"{}", content_type=JSON)


def dump(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as the real service sends it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def parse_iso_us(text: str) -> int:
    """Epoch µs of an ISO time (``…Z``); :class:`BadRequest` if it is not one."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"invalid cursor time {text!r}") from exc
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond
