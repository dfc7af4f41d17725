"""The one exception hierarchy of soundfleet.

Every error we raise on purpose derives from :class:`SoundfleetError`; driver errors
(asyncpg, aiohttp, OS) are converted into one of these at the edge that meets them, so
entry points can print one clear line instead of a traceback.
"""

from __future__ import annotations


class SoundfleetError(Exception):
    """Root of every error soundfleet raises on purpose."""


class ConfigError(SoundfleetError):
    """A setting is missing or malformed (names the setting)."""


class DatabaseError(SoundfleetError):
    """The database is unreachable, refused us, or is in an unexpected state."""


class InputError(SoundfleetError):
    """Input from a user, a file or a remote peer is invalid (names the field)."""


class PayloadError(InputError):
    """An api-v2 payload did not have the shape we expect."""


class NotFoundError(SoundfleetError):
    """A requested object does not exist."""


class ConflictError(SoundfleetError):
    """A state transition was refused (for example a stale lease token)."""


class LeaseLost(ConflictError):
    """The coordinator re-issued this unit's lease (409): stop working on it."""


class CoordinatorError(SoundfleetError):
    """The coordinator is unreachable or answered something unexpected."""
