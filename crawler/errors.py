"""Errors of the crawler, each a subclass of the :mod:`schemas.errors` hierarchy.

The lease loop turns them into unit outcomes: :class:`TransientError` and its
subclasses are retried by the HTTP client and, once retries are exhausted, fail the
unit with ``retryable=True``; :class:`OffHostError` and :class:`UnexpectedResponse`
fail it with ``retryable=False`` (retrying would send the same request again).
"""

from __future__ import annotations

from schemas.errors import InputError, LeaseLost, PayloadError, SoundfleetError


class TransientError(SoundfleetError):
    """A request failed in a way another attempt may not: connection, 5xx, bad body."""


class MalformedBody(TransientError, PayloadError):
    """A 2xx response whose body is not the JSON we expect (truncated, HTML, wrong type)."""


class RateLimited(TransientError):
    """The platform answered 429; ``retry_after`` is its ``Retry-After`` in seconds."""

    def __init__(self, url: str, retry_after: float) -> None:
        super().__init__(f"429 from {url} (Retry-After {retry_after:g}s)")
        self.retry_after = retry_after


class ClientIdRejected(TransientError):
    """The platform said the client_id in use is no longer valid (401, api-v2's error JSON)."""


class Blocked(TransientError):
    """The platform's bot protection refused us (a DataDome 403, an HTML 403, the same id
    rediscovered): the fleet pauses, with growing backoff; ``wait_s`` is this pause."""

    def __init__(self, url: str, reason: str, wait_s: float) -> None:
        super().__init__(f"GET {url}: blocked ({reason}); paused {wait_s:g}s")
        self.reason = reason
        self.wait_s = wait_s


class BodyTooLarge(SoundfleetError):
    """A response body over the size cap: its read was abandoned (retried, then dead)."""


class PlatformAbsent(TransientError):
    """The platform answers 404 for an id known to be live: a wrong base URL or a block
    that looks like absence. Nothing is marked gone; the unit fails with this reason."""


class OffHostError(InputError):
    """A URL the platform handed us (``next_href``, redirect) points off the API host."""


class PagingLoop(InputError):
    """A list that does not end: a ``next_href`` met twice in one unit, or more pages
    than ``max_pages`` (the unit fails, not retried: the platform would loop again)."""


class UnexpectedResponse(InputError):
    """A status the crawler has no recovery for (400, 410, a redirect, ...)."""


class DiscoveryError(SoundfleetError):
    """No client_id could be found by the configured discovery strategies."""


class StaleLease(LeaseLost):
    """A batch's lease ran out or was re-issued before it landed: nothing was written."""
