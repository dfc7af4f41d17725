"""Coordinator-specific errors, all within the :mod:`schemas.errors` hierarchy."""

from __future__ import annotations

from schemas.errors import InputError, SoundfleetError
from schemas.jobs import FieldError


class FieldsError(InputError):
    """Input that is well-formed JSON but invalid: answered 422 with per-field errors."""

    def __init__(self, message: str, fields: list[FieldError]) -> None:
        super().__init__(message)
        self.fields = fields


class HttpError(SoundfleetError):
    """A request refused at the HTTP edge with a specific 4xx status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthError(HttpError):
    """No key, an unknown key (401) or a role the route does not admit (403)."""
