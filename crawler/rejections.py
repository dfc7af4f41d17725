"""Telling a refused client_id from a bot-protection block, and the block backoff.

The two call for opposite reactions. A client_id that the platform no longer accepts
is replaced (one rediscovery for the whole fleet). A block says nothing about the id:
rediscovering would fetch the homepage from a blocked address and find the same id,
and retrying at once deepens the block. So a block pauses the fleet, for longer each
time it recurs, and the id is kept.

What the real platform sends (``shared/fixtures/recorded-exchanges``): api-v2 sits
behind DataDome (``x-datadome: protected``, a ``datadome`` cookie); a blocked client
gets a 403 whose body is HTML or DataDome's JSON (``{"url": "https://geo.captcha-
delivery.com/…"}``); api-v2's own errors are JSON with ``code``/``errors``/``status``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

RejectionKind = Literal["invalid_client_id", "blocked"]

_DATADOME_MARKERS = (b"datadome", b"captcha-delivery.com", b"geo.captcha", b"dd={")


def _api_error_shape(body: bytes) -> bool:
    """True for api-v2's own error body (``{"code": 401, "errors": [...], ...}``)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and (
        "errors" in data or ("code" in data and "message" in data) or "error_message" in data
    )


def classify_rejection(
    status: int, headers: Mapping[str, str], body: bytes
) -> tuple[RejectionKind, str]:
    """Whether a 401/403 refuses the client_id or blocks the client, and why.

    * 401: the id (the platform's answer to a missing, wrong or rotated id);
    * 403 with a DataDome header, cookie or body, or an HTML body: a block;
    * 403 with api-v2's JSON error shape: the id;
    * 403 of any other shape: a block, since pausing costs minutes while burning
      rediscoveries on a block can lock the fleet out.
    """
    content_type = (headers.get("Content-Type") or "").lower()
    lowered = body[:4096].lower()
    if status == 401:
        return "invalid_client_id", "HTTP 401"
    datadome = any(
        name in headers for name in ("x-datadome", "X-DataDome", "x-dd-b", "X-DD-B")
    ) or "datadome=" in (headers.get("Set-Cookie") or "")
    if datadome or any(marker in lowered for marker in _DATADOME_MARKERS):
        return "blocked", "HTTP 403 from DataDome bot protection"
    if "html" in content_type or lowered.lstrip().startswith((b"<!doctype", b"<html")):
        return "blocked", "HTTP 403 with an HTML body"
    if _api_error_shape(body):
        return "invalid_client_id", "HTTP 403 with api-v2's error body"
    shown = body[:80].decode("utf-8", "replace")
    return "blocked", f"HTTP 403 of unknown shape ({content_type or 'no content type'}: {shown!r})"


class BlockBackoff:
    """Growing pauses for blocks: ``base_s`` doubling to ``max_s``; a quiet spell resets it.

    The coordinator keeps the fleet's own copy of this state in the database; this one
    serves a client without a coordinator (benchmarks, ``soundfleet smoke``).
    """

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.level = 0

    def next_wait(self) -> float:
        """The pause for a block now (and one level more for the next)."""
        wait = min(self.max_s, self.base_s * 2.0**self.level)
        self.level = min(self.level + 1, 30)
        return wait

    def reset(self) -> None:
        """The platform answered again: the next block starts from ``base_s``."""
        self.level = 0
